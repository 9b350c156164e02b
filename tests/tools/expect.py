#!/usr/bin/env python3
"""What `volperm plan --owner UID:GID DIR` should report, computed independently.

usage: expect.py DIR UID:GID      prints one JSON object

Walks DIR physically on one filesystem (like volperm: nested mount points
and device nodes are counted as skipped and not entered) and applies the
contract's rules: an entry changes when its uid or gid differs from the
target; chown clears setuid on non-directories, setgid on non-directories
with group-execute, and security.capability. Counts are given per path
("scanned", "dirs", "files", "symlinks", "other", "changes", ...) and, for
the change counters, per inode too ("changes_inodes", ...): a hard-linked
file changes once, so an implementation may count either way. "dup_links"
is the number of extra paths of hard-linked files.
"""
import json
import os
import stat
import sys


def has_caps(p):
    try:
        os.getxattr(p, "security.capability", follow_symlinks=False)
        return True
    except OSError:
        return False


def main():
    root = os.fsencode(sys.argv[1])
    u, _, g = sys.argv[2].partition(":")
    tu, tg = int(u), int(g)
    c = dict(scanned=0, dirs=0, files=0, symlinks=0, other=0, changes=0, owner=0, group=0,
             setuid_cleared=0, setgid_cleared=0, caps_dropped=0, unchanged=0, skipped=0,
             mount_point=0, device=0)
    ci = dict(changes_inodes=0, owner_inodes=0, group_inodes=0, setuid_cleared_inodes=0,
              setgid_cleared_inodes=0, caps_dropped_inodes=0, unchanged_inodes=0)
    seen = set()
    dup = 0
    rootdev = os.lstat(root).st_dev

    def visit(p, st, is_root):
        nonlocal dup
        m = st.st_mode
        c["scanned"] += 1
        if stat.S_ISDIR(m):
            c["dirs"] += 1
        elif stat.S_ISREG(m):
            c["files"] += 1
        elif stat.S_ISLNK(m):
            c["symlinks"] += 1
        else:
            c["other"] += 1
        if stat.S_ISDIR(m) and st.st_dev != rootdev and not is_root:
            c["skipped"] += 1
            c["mount_point"] += 1
            return False
        if stat.S_ISCHR(m) or stat.S_ISBLK(m):
            c["skipped"] += 1
            c["device"] += 1
            return False
        first = True
        if not stat.S_ISDIR(m) and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in seen:
                first = False
                dup += 1
            seen.add(key)
        ou, og = st.st_uid != tu, st.st_gid != tg
        ch = ou or og
        flags = dict(changes=ch, owner=ou, group=og,
                     setuid_cleared=ch and not stat.S_ISDIR(m) and bool(m & stat.S_ISUID),
                     setgid_cleared=ch and not stat.S_ISDIR(m) and bool(m & stat.S_ISGID)
                     and bool(m & stat.S_IXGRP),
                     # plan probes capabilities on executable files only
                     caps_dropped=ch and stat.S_ISREG(m) and bool(m & 0o111) and has_caps(p),
                     unchanged=not ch)
        for k, v in flags.items():
            if v:
                c[k] += 1
                if first:
                    ci[k + "_inodes"] += 1
        return stat.S_ISDIR(m)

    st = os.lstat(root)
    if visit(root, st, True):
        stack = [root]
        while stack:
            d = stack.pop()
            for e in os.scandir(d):
                p = os.path.join(d, e.name)
                s = os.lstat(p)
                if visit(p, s, False):
                    stack.append(p)
    c.update(ci)
    c["dup_links"] = dup
    print(json.dumps(c, sort_keys=True))


if __name__ == "__main__":
    main()
