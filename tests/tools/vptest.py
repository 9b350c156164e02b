"""Helpers shared by volperm's Python test tools.

Imported by tests/tools/*.py (they run as scripts, so their own directory
is on sys.path), tests/crash/crashlib.py, and the Python embedded in the
shell tests (tests/security/seclib.bash's jlines, tests/cli/safety.sh,
tests/security/{mounts,dryrun,hostile_names}.sh), which put $TOOLS
(tests/tools) on sys.path first. One copy of the path escaping on purpose:
the tests compare the output of one tool with another's (a snapshot with a
--list or --json decoding, a manifest with a snapshot), which only works
while every tool escapes a path the same way. Its unit test is
tests/tools/test_vptest.py.
"""
import base64
import json


def esc(b):
    """Printable, unambiguous form of a byte path: bytes outside 0x21..0x7e,
    and the backslash, are written \\xHH (so a name with a space, a tab or a
    newline stays one field of a tab-separated line)."""
    return "".join(chr(c) if 0x21 <= c <= 0x7E and c != 0x5C else "\\x%02x" % c for c in b)


def unesc(s):
    """Inverse of esc: escaped path -> bytes."""
    out = bytearray()
    i = 0
    while i < len(s):
        if s[i] == "\\" and s[i + 1:i + 2] == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(ord(s[i]))
            i += 1
    return bytes(out)


def rel(p, root):
    """A byte path as the tests name it: "." for root, the escaped path
    relative to root below it, "OUTSIDE:" + the escaped path elsewhere (a
    path volperm should never have named). root: bytes, no trailing slash."""
    if p == root:
        return "."
    if p.startswith(root + b"/"):
        return esc(p[len(root) + 1:])
    return "OUTSIDE:" + esc(p)


def json_bytes(o, key):
    """The exact bytes of the path member KEY of a JSON object volperm
    wrote: KEY_b64 when it is there (volperm adds it when the name is not
    UTF-8, src/quote.c), else KEY as UTF-8 ("" when neither is there)."""
    if o.get(key + "_b64") is not None:
        return base64.b64decode(o[key + "_b64"])
    return o.get(key, "").encode("utf-8")


def event_path(o):
    """The path of a --json event (or an exported journal record) as bytes."""
    return json_bytes(o, "path")


def json_paths(fname):
    """The escaped paths (esc) that the NDJSON file FNAME names: one per
    object with a path (a --json event, a `journal export --format json`
    record); objects without one (the header, the summary) are passed
    over. A line that is not JSON raises ValueError."""
    out = set()
    with open(fname, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            if "path" in o or "path_b64" in o:
                out.add(esc(event_path(o)))
    return out
