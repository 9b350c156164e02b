#!/usr/bin/env bash
# Case 16: a dry run changes nothing. On a tree with everything of the other
# cases (setuid/setgid, capabilities, ACLs and default ACLs, user and trusted
# xattrs, hostile names, symlinks out, in-tree and external hard links, a
# FIFO with no writer, a socket, device nodes, a nested tmpfs, an immutable
# file, an unreadable dir), plan and check under several policies leave the
# metadata snapshot (with ctime) and every xattr byte-identical; strace shows
# that no file under the tree was opened for writing and that no mutating
# syscall (chown, chmod, xattr writes, unlink, rename, mkdir, link, utimes,
# truncate) was made at all, and no journal was created.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd strace setfacl setcap mkfifo mknod chattr
strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here (no ptrace)"

J=$W/jdir-none
E=$W/etc
make_decoy "$E"
V=$W/vol
mktree "$V" 400 --seed 16 --uid 0 --gid 0 --setid 5 --caps 2 --acl-every 7 --hostile
mkdir -p "$V/special/m" "$V/private"
mkfifo "$V/special/fifo"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$V/special/sock"
mknod "$V/special/null" c 1 3
mknod "$V/special/blk" b 7 251
ln "$E/shadow" "$V/special/ext-link"
echo frozen >"$V/special/immutable"
chattr +i "$V/special/immutable" || say "# chattr +i not supported here"
echo p >"$V/private/p"
chmod 0700 "$V/private"
chown 1000:1000 "$V/private"
python3 - "$V" <<'PY'
import os, sys
root = sys.argv[1]
os.setxattr(os.path.join(root, "special", "fifo"), "trusted.t", b"1", follow_symlinks=False)
for name in ("wide", "special"):
    os.setxattr(os.path.join(root, name), "user.note", b"keep me", follow_symlinks=False)
PY
mount -t tmpfs -o size=1m tmpfs "$V/special/m" || die "mount tmpfs"
echo inner >"$V/special/m/inner"
say "# tree: $(entries "$V") entries"

# all_xattrs DIR FILE: every xattr of every entry (names and values, hex).
all_xattrs() {
	python3 - "$1" "$TOOLS" >"$2" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[2])
from vptest import esc
root = os.fsencode(sys.argv[1])
out = []
for d, dirs, files in os.walk(root):
    for n in dirs + files + ([b""] if d == root else []):  # b"": the root itself
        p = os.path.join(d, n) if n else d
        try:
            names = sorted(os.listxattr(p, follow_symlinks=False))
        except OSError as e:
            names = ["<%s>" % e.strerror]
        for x in names:
            try:
                v = os.getxattr(p, x, follow_symlinks=False).hex() if not x.startswith("<") else ""
            except OSError as e:
                v = "<%s>" % e.strerror
            out.append("%s\t%s\t%s" % (esc(os.path.relpath(p, root)), x, v))
print("\n".join(sorted(out)))
PY
}
snap "$V" "$W/s0.snap" --ctime
all_xattrs "$V" "$W/x0"
decoy_snap "$E" "$W/d0.snap"
say "# $(wc -l <"$W/x0") xattrs"

MUTATING='chown|fchown|lchown|fchownat|chmod|fchmod|fchmodat|fchmodat2|setxattr|lsetxattr|fsetxattr|removexattr|lremovexattr|fremovexattr|unlink|unlinkat|rename|renameat|renameat2|mkdir|mkdirat|rmdir|link|linkat|symlink|symlinkat|utimes|utimensat|futimesat|truncate|ftruncate|mknod|mknodat'
n=0
while read -r cmd pol; do
	n=$((n + 1))
	log=$W/dry$n.strace
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	# shellcheck disable=SC2086
	env "$NOLSAN" strace -f -y -qq -o "$log" -e trace=%file,%desc,chown,fchown,fchownat,fchmod,ftruncate timeout -k 5 30 "$VP" "$cmd" $pol --journal-dir "$J" "$V" >"$OUT" 2>"$ERR"
	RC=$?
	say "+ [traced] volperm $cmd $pol -> exit $RC"
	_sanitizer_check
	expect_rc_in "0 1 5" "$cmd $pol: ran"
	bad=$(python3 - "$log" "$V" "$MUTATING" <<'PY'
import re, sys
log, root, mut = sys.argv[1], sys.argv[2], sys.argv[3].split("|")
mut_re = re.compile(r"^\d+\s+(%s)\(" % "|".join(mut))
for line in open(log, errors="replace"):
    line = line.rstrip()
    if mut_re.search(line):
        print("mutating syscall: " + line[:240])
        continue
    m = re.search(r"\b(open|openat|openat2|creat)\(", line)
    if m and re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND", line):
        r = re.search(r"= (\d+)<(.*)>$", line)
        path = r.group(2) if r else line
        if root in path or m.group(1) == "creat":
            print("opened for writing: " + line[:240])
PY
)
	if [ -z "$bad" ]; then
		pass "$cmd $pol: no mutating syscall, nothing under the tree opened for writing (strace)"
	else
		fail "$cmd $pol: the dry run wrote:"
		printf '%s\n' "$bad" | head -n 8 | sed 's/^/    /'
	fi
done <<'EOF'
plan --owner 1001:1001
check --owner 1001:1001
plan --map 0:1001 --map-gid 0:1001 --list
check --map 1000:1001
plan --owner 1001:1001 --json --cross-mounts --include-devices --allow-external-links
check --owner :1001 --exclude wide --exclude special/m
plan --owner 0:0
EOF
snap "$V" "$W/s1.snap" --ctime
snap_eq "$W/s0.snap" "$W/s1.snap" "after $n dry runs: the metadata snapshot (ctime included) is byte-identical"
all_xattrs "$V" "$W/x1"
if cmp -s "$W/x0" "$W/x1"; then pass "after $n dry runs: every xattr byte-identical"; else fail "xattrs changed:"; diff "$W/x0" "$W/x1" | head | sed 's/^/    /'; fi
decoy_same "$E" "$W/d0.snap" "decoy (hard-linked in) untouched"
assert_true "no journal dir created by dry runs" test ! -e "$J"
chattr -i "$V/special/immutable" 2>/dev/null

finish
