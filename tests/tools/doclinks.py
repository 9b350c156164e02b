#!/usr/bin/env python3
"""Check that every file the documentation names exists in the tree.

usage: doclinks.py [--repo DIR] [FILE...]

Reads README.md, docs/*.md, every README.md below tests/ and the man page
docs/volperm.1 (or only the FILEs named, relative to the repo) and checks
  - every relative Markdown link, [text](target) and [label]: target
    (URLs and in-page #anchors are not files; a target's #anchor is cut
    off), resolved from the directory of the file that has it;
  - every repository path in a code span, `src/...`, `tests/...`,
    `docs/...`, `scripts/...`, `include/...`, and in the man page every
    word of that form, resolved from the top of the repository. A glob
    (`tests/cli/*.sh`) or a brace list (`tests/{cli,policy}/run.sh`) must
    match at least one file; a word in capitals or in <angle brackets>
    (`tests/SUITE/`, `tests/<suite>/`) is a placeholder, so the path is
    checked up to the directory before it.
Prints `FILE:LINE: dangling reference 'X'` for each miss, then a count,
and exits 1 when there was any (CTest: cli/doclinks).
"""
import argparse
import glob
import os
import re
import sys

PREFIXES = ("src", "tests", "docs", "scripts", "include")
# a repository path: one of the prefixes, then path characters (globs and
# brace lists included); not preceded by a path character (so that
# build/tests/x or $REPO/tests/x are not taken for one)
PATH_RE = re.compile(r"(?<![\w./$-])((?:%s)/[\w./*?{},<>+-]*)" % "|".join(PREFIXES))
CODE_RE = re.compile(r"(`+)(.+?)\1")
LINK_RE = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFDEF_RE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def doc_files(repo):
    out = ["README.md"]
    out += sorted(os.path.relpath(p, repo) for p in glob.glob(os.path.join(repo, "docs", "*.md")))
    out += sorted(os.path.relpath(p, repo)
                  for p in glob.glob(os.path.join(repo, "tests", "**", "README.md"), recursive=True))
    out.append(os.path.join("docs", "volperm.1"))
    return [f for f in out if os.path.isfile(os.path.join(repo, f))]


def expand_braces(s):
    """tests/{a,b}/x -> [tests/a/x, tests/b/x] (nested lists too)."""
    m = re.search(r"\{([^{}]*)\}", s)
    if not m:
        return [s]
    out = []
    for alt in m.group(1).split(","):
        out += expand_braces(s[:m.start()] + alt + s[m.end():])
    return out


def is_placeholder(component):
    return (component.startswith("<") or
            (re.fullmatch(r"[A-Z][A-Z0-9_]*", component) is not None and component not in ("README",)))


def path_exists(repo, path):
    """Does the repository path (glob, braces and placeholders allowed) name
    something that is there?"""
    for p in expand_braces(path):
        parts = p.split("/")
        for i, c in enumerate(parts):
            if is_placeholder(c) or "<" in c:
                parts = parts[:i]
                break
        p = "/".join(parts)
        if not p:
            return True
        full = os.path.join(repo, p)
        if any(ch in p for ch in "*?"):
            if not glob.glob(full):
                return False
        elif not os.path.lexists(full):
            return False
    return True


def clean_path(p):
    # sentence punctuation after a path in prose or a code span
    p = p.rstrip(".,:;)")
    # `tests/cli/` and `tests/cli` are the same directory
    return p


def check_file(repo, rel):
    """The dangling references of one doc file: [(line, ref)]."""
    here = os.path.dirname(os.path.join(repo, rel))
    bad = []
    man = rel.endswith(".1")
    in_fence = False
    with open(os.path.join(repo, rel), encoding="utf-8") as f:
        lines = f.read().splitlines()
    for no, line in enumerate(lines, 1):
        if man:
            # roff: \- is a hyphen, \fB...\fR fonts, \& a zero-width break
            text = re.sub(r"\\f[BIRP]|\\&|\\e", "", line).replace("\\-", "-")
            for p in PATH_RE.findall(text):
                p = clean_path(p)
                if not path_exists(repo, p):
                    bad.append((no, p))
            continue
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            # a code block is commands and output: its paths are checked
            # like a code span's
            spans = [line]
        else:
            spans = [m.group(2) for m in CODE_RE.finditer(line)]
            prose = CODE_RE.sub("", line)
            targets = LINK_RE.findall(prose)
            m = REFDEF_RE.match(prose)
            if m:
                targets.append(m.group(1))
            for t in targets:
                if SCHEME_RE.match(t) or t.startswith("#"):
                    continue
                t = t.split("#", 1)[0]
                if t and not os.path.lexists(os.path.normpath(os.path.join(here, t))):
                    bad.append((no, t))
        for s in spans:
            for p in PATH_RE.findall(s):
                p = clean_path(p)
                if not path_exists(repo, p):
                    bad.append((no, p))
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("files", nargs="*")
    a = ap.parse_args(argv)
    repo = os.path.abspath(a.repo)
    files = a.files or doc_files(repo)
    n = 0
    for rel in files:
        for no, ref in check_file(repo, rel):
            print("%s:%d: dangling reference '%s'" % (rel, no, ref))
            n += 1
    print("doclinks: %d file(s), %d dangling reference(s)" % (len(files), n))
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main())
