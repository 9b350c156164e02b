#!/usr/bin/env python3
"""Build a deterministic directory tree for volperm's CLI tests and benchmarks.

usage: mktree.py DEST ENTRIES [--seed N] [--uid U --gid G] [--mixed F]
                 [--acl-every K] [--default-acl-every K] [--setid N]
                 [--caps [N]] [--hardlink-every K] [--symlink-every K]
                 [--hostile] [--manifest FILE] [--quiet]

Shape (roughly like real volumes: package caches, database dirs, user data):
  * directories of 1..60 entries, depth up to 8, plus one 'wide' directory
    holding 5% of all entries;
  * about 1 in --symlink-every entries is a symlink: absolute and relative
    ones pointing outside DEST, dangling ones, and ones pointing inside;
  * about 1 in --hardlink-every entries is a second hard link to a file
    inside DEST (hard links never leave DEST);
  * entries are owned by --uid:--gid (default 0:0) or by 1000:1000 (a
    fraction --mixed of them), with mixed modes, so some already match a
    target and some do not;
  * --acl-every K: every K-th regular file gets an access ACL
    (u:2000:rw,g:3000:r); every K-th directory (or --default-acl-every)
    gets an access ACL and a default ACL (d:u:2000:rwx,d:g:3000:rx);
  * --setid N (default 5): N files with setuid / setgid bits (4755, 2755,
    6755, 2745: setgid without group-execute, 4711) and one setgid directory;
  * --caps [N]: N (default 4) files get `setcap cap_net_raw+ep`;
  * --hostile: a directory 'hostile' with names containing a newline, a
    tab, a 0xff byte, a leading '-', quotes, backslashes, spaces, UTF-8
    and one 255-byte name.

The same arguments always give the same tree (paths, owners, modes, ACLs,
capabilities; not inode numbers or times). ENTRIES counts created paths,
DEST itself excluded. Prints one summary line; --manifest FILE writes
"CATEGORY<TAB>relative-path" lines for the special entries (paths are
printed with Python's backslash escapes for non-printable bytes).
Needs root for the owners, setfacl for ACLs and setcap for capabilities.
"""
import argparse
import os
import random
import subprocess
import sys

from vptest import esc


def run_batched(cmd, paths, n=400):
    for i in range(0, len(paths), n):
        subprocess.run(cmd + paths[i:i + n], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest")
    ap.add_argument("entries", type=int)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--uid", type=int, default=0)
    ap.add_argument("--gid", type=int, default=0)
    ap.add_argument("--mixed", type=float, default=0.5,
                    help="fraction of entries owned by 1000:1000 instead of uid:gid")
    ap.add_argument("--acl-every", type=int, default=0,
                    help="give every K-th file a named-user/group access ACL")
    ap.add_argument("--default-acl-every", type=int, default=None,
                    help="give every K-th dir an access+default ACL (default: --acl-every)")
    ap.add_argument("--setid", type=int, default=5,
                    help="number of setuid/setgid files, plus one setgid dir (default 5; 0: none)")
    ap.add_argument("--caps", type=int, nargs="?", const=4, default=0,
                    help="number of files given cap_net_raw+ep (default 4)")
    ap.add_argument("--hardlink-every", type=int, default=500,
                    help="about 1 in K entries is an extra in-tree hard link (0: none)")
    ap.add_argument("--symlink-every", type=int, default=200,
                    help="about 1 in K entries is a symlink (0: none)")
    ap.add_argument("--hostile", action="store_true",
                    help="add a directory of hostile file names")
    ap.add_argument("--manifest", help="write special entries to this file")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()

    rnd = random.Random(a.seed)
    os.makedirs(a.dest, exist_ok=True)
    root = os.fsencode(os.path.abspath(a.dest))
    if os.listdir(root):
        sys.exit("mktree.py: %s is not empty" % a.dest)
    dacl_every = a.acl_every if a.default_acl_every is None else a.default_acl_every

    made = 0
    dirs = [root]
    files = []          # regular files (first links only)
    manifest = []       # (category, abs path bytes)
    acl_files, acl_dirs = [], []
    counts = dict(dirs=0, files=0, symlinks=0, hardlinks=0)

    def rel(p):
        r = os.path.relpath(p, root)
        return r

    def own(p, follow=True, fixed=None):
        if fixed is not None:
            os.chown(p, *fixed, follow_symlinks=follow)
        elif rnd.random() < a.mixed:
            os.chown(p, 1000, 1000, follow_symlinks=follow)
        else:
            os.chown(p, a.uid, a.gid, follow_symlinks=follow)

    def mkdir(p, mode=0o755, owner=None):
        nonlocal made
        os.mkdir(p)
        own(p, fixed=owner)
        os.chmod(p, mode)  # after chown; mkdir is subject to the umask
        dirs.append(p)
        counts["dirs"] += 1
        if dacl_every and counts["dirs"] % dacl_every == 0:
            acl_dirs.append(p)
            manifest.append(("default-acl-dir", p))
        made += 1

    def mkfile(p, mode=None, data=None, owner=None):
        nonlocal made
        with open(p, "wb") as f:
            if data is not None:
                f.write(data)
            elif rnd.random() < 0.1:
                f.write(b"x" * rnd.randint(1, 4096))
        own(p, fixed=owner)
        if mode is None:
            mode = rnd.choice([0o644, 0o600, 0o640, 0o755, 0o664])
        os.chmod(p, mode)  # chmod after chown: chown would clear setid bits
        files.append(p)
        counts["files"] += 1
        if a.acl_every and counts["files"] % a.acl_every == 0:
            acl_files.append(p)
            manifest.append(("acl-file", p))
        made += 1

    def mksymlink(p, tgt):
        nonlocal made
        os.symlink(tgt, p)
        own(p, follow=False)
        counts["symlinks"] += 1
        manifest.append(("symlink", p))
        made += 1

    def mklink(src, p):
        nonlocal made
        os.link(src, p)
        counts["hardlinks"] += 1
        manifest.append(("hardlink", p))
        made += 1

    def alt(i):
        # special entries alternate between the two owners, so that any
        # target (1000:1000 or another) finds some of them to change
        return (a.uid, a.gid) if i % 2 == 0 else (1000, 1000)

    wide = os.path.join(root, b"wide")
    mkdir(wide)
    # A few fixed special entries first, so that small trees have them too.
    specials = os.path.join(root, b"special")
    mkdir(specials)
    for i in range(a.setid):
        mode = [0o4755, 0o2755, 0o6755, 0o2745, 0o4711][i % 5]
        p = os.path.join(specials, b"setid%d" % i)
        mkfile(p, mode=mode, data=b"#!/bin/sh\n", owner=alt(i))
        manifest.append(("setid-file", p))
    if a.setid:
        p = os.path.join(specials, b"setgid-dir")
        mkdir(p, mode=0o2775, owner=(a.uid, a.gid))
        manifest.append(("setgid-dir", p))
    cap_files = []
    for i in range(a.caps):
        p = os.path.join(specials, b"cap%d" % i)
        mkfile(p, mode=0o755, data=b"\x7fELF-not-really\n", owner=alt(i))
        cap_files.append(p)
        manifest.append(("cap-file", p))
    if a.symlink_every:
        for name, tgt in [(b"abs-out", b"/etc/passwd"),
                          (b"rel-out", b"../../../../../../../../../../etc/hostname"),
                          (b"dangling", b"does-not-exist"),
                          (b"in-tree", b"../wide"),
                          (b"to-root", b"/")]:
            mksymlink(os.path.join(specials, b"link-" + name), tgt)
    if a.hardlink_every and files:
        mklink(files[0], os.path.join(specials, b"hardlink0"))

    if a.hostile:
        hd = os.path.join(root, b"hostile")
        mkdir(hd)
        names = [b"new\nline", b"tab\there", b"byte\xffname", b"-leading-dash",
                 b"--", b"sp ace", b"quo'te", b'dq"uote', b"back\\slash",
                 b"dollar$(x)`y`", b"caf\xc3\xa9", b"\x01ctl", b"star*?[",
                 b"L" * 255]
        for n in names:
            mkfile(os.path.join(hd, n), mode=0o644, data=b"")
            manifest.append(("hostile", os.path.join(hd, n)))
        d2 = os.path.join(hd, b"dir\nwith\nnewlines")
        mkdir(d2)
        mkfile(os.path.join(d2, b"inner"), mode=0o600, data=b"")
        mksymlink(os.path.join(hd, b"link\n-> x"), b"new\nline")

    wide_quota = a.entries // 20
    for i in range(wide_quota):
        if made >= a.entries:
            break
        mkfile(os.path.join(wide, b"w%07d.dat" % i))

    frontier = [(root, 0)]
    while made < a.entries:
        if not frontier:
            frontier = [(d, 1) for d in rnd.sample(dirs, min(len(dirs), 50))]
        d, depth = frontier.pop(rnd.randrange(len(frontier)))
        n = rnd.randint(1, 60)
        for i in range(n):
            if made >= a.entries:
                break
            r = rnd.random()
            p = os.path.join(d, b"e%d_%d" % (depth, i))
            if os.path.lexists(p):
                continue
            sl = 1.0 / a.symlink_every if a.symlink_every else 0.0
            hl = 1.0 / a.hardlink_every if a.hardlink_every else 0.0
            if r < 0.15:
                if depth < 8:
                    mkdir(p)
                    frontier.append((p, depth + 1))
                else:
                    mkfile(p)
            elif r < 0.15 + sl:
                tgt = rnd.choice([b"/etc/passwd", b"../missing", b"e0_0", b"/",
                                  b"../" * (depth + 2) + b"outside-dangling"])
                mksymlink(p, tgt)
            elif r < 0.15 + sl + hl and files:
                mklink(rnd.choice(files), p)
            else:
                mkfile(p)

    if acl_files:
        run_batched(["setfacl", "-m", "u:2000:rw,g:3000:r"], acl_files)
    if acl_dirs:
        run_batched(["setfacl", "-m",
                     "u:2000:rwx,g:3000:rx,d:u:2000:rwx,d:g:3000:rx,d:o::-"], acl_dirs)
    for p in cap_files:
        subprocess.run(["setcap", "cap_net_raw+ep", p], check=True)

    if a.manifest:
        with open(a.manifest, "w") as f:
            for cat, p in manifest:
                f.write("%s\t%s\n" % (cat, esc(os.fsencode(rel(p)))))
    if not a.quiet:
        print("entries=%d dirs=%d files=%d symlinks=%d hardlinks=%d acl_files=%d "
              "acl_dirs=%d setid=%d caps=%d" %
              (made, counts["dirs"], counts["files"], counts["symlinks"],
               counts["hardlinks"], len(acl_files), len(acl_dirs), a.setid, len(cap_files)))


if __name__ == "__main__":
    main()
