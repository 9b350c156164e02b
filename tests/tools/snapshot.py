#!/usr/bin/env python3
"""Deterministic metadata snapshot of a tree, and a diff of two snapshots.

usage:
  snapshot.py [--ctime] [--xdev] [-o FILE] DIR
  snapshot.py --diff [--ignore FILE] [--ignore-field NAME] [--max N] A B

Snapshot: one line per entry (DIR itself is "."), sorted by the raw bytes
of the relative path, tab-separated:

  PATH TYPE UID GID MODE ACL_ACCESS ACL_DEFAULT CAPS [CTIME]

  PATH   relative path; bytes outside 0x21..0x7e and '\\' are written \\xHH
  TYPE   dir file symlink fifo socket chardev blockdev
  MODE   permission bits incl. setuid/setgid/sticky, 4 octal digits
  ACL_ACCESS, ACL_DEFAULT, CAPS
         hex of the raw system.posix_acl_access, system.posix_acl_default
         and security.capability xattrs (never following symlinks), or '-'
  CTIME  st_ctime in nanoseconds (only with --ctime)

Symlinks are never followed; with --xdev the walk does not descend into
other filesystems (mount points themselves are listed).

Diff: compares two snapshot files; prints entries only in A ("- "), only
in B ("+ "), and changed fields ("~ PATH: FIELD A -> B"); exits 0 when they
are equal, 1 when not. --ignore FILE: escaped paths (one a line) to leave
out; --ignore-field: a column name to leave out (repeatable).
"""
import argparse
import errno
import os
import stat
import sys

from vptest import esc

FIELDS = ["type", "uid", "gid", "mode", "acl_access", "acl_default", "caps", "ctime"]
XATTRS = ["system.posix_acl_access", "system.posix_acl_default", "security.capability"]


def ftype(m):
    if stat.S_ISDIR(m):
        return "dir"
    if stat.S_ISREG(m):
        return "file"
    if stat.S_ISLNK(m):
        return "symlink"
    if stat.S_ISFIFO(m):
        return "fifo"
    if stat.S_ISSOCK(m):
        return "socket"
    if stat.S_ISCHR(m):
        return "chardev"
    if stat.S_ISBLK(m):
        return "blockdev"
    return "unknown"


def xattr(p, name):
    try:
        return os.getxattr(p, name, follow_symlinks=False).hex()
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return "-"
        raise


def walk(root, xdev):
    """Yield (relpath bytes, abspath bytes, stat) for every entry."""
    st = os.lstat(root)
    yield b".", root, st
    rootdev = st.st_dev
    stack = [(b"", root)]
    while stack:
        rel, d = stack.pop()
        with os.scandir(d) as it:
            ents = sorted(it, key=lambda e: e.name)
        for e in ents:
            p = os.path.join(d, e.name)
            r = e.name if not rel else rel + b"/" + e.name
            s = os.lstat(p)
            yield r, p, s
            if stat.S_ISDIR(s.st_mode) and not (xdev and s.st_dev != rootdev):
                stack.append((r, p))


def snapshot(root, with_ctime, xdev):
    lines = []
    for r, p, s in walk(os.fsencode(root), xdev):
        cols = [esc(r), ftype(s.st_mode), str(s.st_uid), str(s.st_gid),
                "%04o" % stat.S_IMODE(s.st_mode)]
        cols += [xattr(p, n) for n in XATTRS]
        if with_ctime:
            cols.append(str(s.st_ctime_ns))
        lines.append((r, "\t".join(cols)))
    lines.sort(key=lambda x: x[0])
    return [l for _, l in lines]


def load(path):
    d = {}
    with open(path, encoding="ascii") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            cols = line.split("\t")
            d[cols[0]] = cols[1:]
    return d


def differences(A, B, ignore=(), ignore_fields=()):
    """The differences of two loaded snapshots, as diff prints them."""
    out = []
    for p in sorted(set(A) | set(B)):
        if p in ignore:
            continue
        if p not in B:
            out.append("- %s\t%s" % (p, "\t".join(A[p])))
            continue
        if p not in A:
            out.append("+ %s\t%s" % (p, "\t".join(B[p])))
            continue
        ca, cb = A[p], B[p]
        n = max(len(ca), len(cb))
        for i in range(n):
            name = FIELDS[i] if i < len(FIELDS) else "col%d" % i
            if name in ignore_fields:
                continue
            va = ca[i] if i < len(ca) else "(none)"
            vb = cb[i] if i < len(cb) else "(none)"
            if va != vb:
                out.append("~ %s: %s %s -> %s" % (p, name, va, vb))
    return out


def diff(a, b, ignore, ignore_fields, maxn):
    out = differences(load(a), load(b), ignore, ignore_fields)
    for l in out[:maxn]:
        print(l)
    if len(out) > maxn:
        print("... and %d more differences" % (len(out) - maxn))
    return 1 if out else 0


def main():
    ap = argparse.ArgumentParser(description="metadata snapshot of a tree, or diff of two")
    ap.add_argument("--ctime", action="store_true", help="add st_ctime (ns)")
    ap.add_argument("--xdev", action="store_true", help="do not enter other filesystems")
    ap.add_argument("-o", "--output", help="write the snapshot here instead of stdout")
    ap.add_argument("--diff", action="store_true", help="diff two snapshot files")
    ap.add_argument("--ignore", help="file of escaped paths to leave out of the diff")
    ap.add_argument("--ignore-field", action="append", default=[], choices=FIELDS)
    ap.add_argument("--max", type=int, default=40, help="print at most N differences")
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    if a.diff:
        if len(a.paths) != 2:
            ap.error("--diff needs two snapshot files")
        ignore = set()
        if a.ignore:
            with open(a.ignore, encoding="ascii") as f:
                ignore = {l.rstrip("\n") for l in f if l.strip()}
        sys.exit(diff(a.paths[0], a.paths[1], ignore, set(a.ignore_field), a.max))
    if len(a.paths) != 1:
        ap.error("one DIR to snapshot")
    lines = snapshot(a.paths[0], a.ctime, a.xdev)
    text = "".join(l + "\n" for l in lines)
    if a.output:
        with open(a.output, "w", encoding="ascii") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
