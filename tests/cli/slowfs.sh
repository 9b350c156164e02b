#!/usr/bin/env bash
# slowfs (tests/tools/slowfs), the latency-bound FUSE passthrough of issue 14:
# it must be a faithful passthrough (owners, modes, ACLs, capabilities, hard
# links, symlinks, inode numbers equal to the backing ones and stable), so
# that volperm through it does exactly what chown -R -h does, rollback
# restores every byte the snapshot sees, and its request counter moves.
# Prints volperm's and chown -R -h's requests per changed entry (a profile,
# not a timing: nothing here asserts a speed).
#
# Skips (77) when /dev/fuse is missing or slowfs was not built (no
# libfuse3-dev). SLOWFS = the binary (default: slowfs next to $VOLPERM).
. "$(dirname "$0")/lib.sh"
setup
need_cmd chown cp getfacl setfacl getcap setfattr getfattr find mountpoint findmnt
[ -c /dev/fuse ] || skip "/dev/fuse is missing (no FUSE in this kernel or container)"
SLOWFS=${SLOWFS:-$(dirname "$VP")/slowfs}
[ -x "$SLOWFS" ] || skip "slowfs not built ($SLOWFS): install libfuse3-dev and rebuild"

DELAY=200

# sfs_mount BACKING MOUNTPOINT [extra -o options]: slowfs in the foreground
# (our child, so the exit trap can wait for it), up before we go on.
sfs_mount() {
	local b=$1 m=$2 extra=${3:+,$3} pid i
	mkdir -p "$m"
	"$SLOWFS" "$b" "$m" -f -o "delay_us=$DELAY,allow_other,default_permissions$extra" \
		2>"$W/slowfs.$(basename "$m").err" &
	pid=$!
	on_exit "umount '$m'; wait $pid"
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$m" && [ -r "$m/.slowfs-stats" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$W/slowfs.$(basename "$m").err"
	die "slowfs did not mount $b on $m"
}
# total MOUNTPOINT: requests served so far.
total() { awk '$1 == "total" { print $2 }' "$1/.slowfs-stats"; }

B=$W/back
M=$W/mnt
mktree "$B" 1000 --seed 14 --acl-every 7 --caps 3 --setid 5 --hardlink-every 40 --hostile
cp -a "$B" "$W/copy" || die "cp -a"
cp -a "$B" "$W/oracle" || die "cp -a"
sfs_mount "$B" "$M"
sfs_mount "$W/copy" "$W/cmnt"
assert_match '^fuse' "$(findmnt -n -o FSTYPE --target "$M")" "slowfs is mounted (FUSE)"

# --- passthrough: what a reader sees is the backing tree -------------------
snap "$B" "$W/b0.snap"
snap "$M" "$W/m0.snap"
snap_eq "$W/b0.snap" "$W/m0.snap" "snapshot through slowfs == backing (owners, modes, ACL and capability xattrs)"
# Requests on the stats file itself are not counted; the kernel's
# permission check on the mount root (a getattr, with default_permissions
# and no attribute cache) before the lookup is.
cat "$M/.slowfs-stats" >"$W/st1"
cat "$M/.slowfs-stats" >"$W/st2"
moved=$(join "$W/st1" "$W/st2" | awk '$1 != "total" && $1 != "getattr" && $2 != $3 { printf "%s ", $1 }')
assert_eq "$moved" "" "reading .slowfs-stats counts no lookup/open/read/release on it"
assert_eq "$(find "$M" -name .slowfs-stats | wc -l)" 0 ".slowfs-stats is not listed by readdir"

(cd "$B" && getfacl -R -P -s . 2>/dev/null) >"$W/acl.b"
(cd "$M" && getfacl -R -P -s . 2>/dev/null) >"$W/acl.m"
if [ -s "$W/acl.b" ] && cmp -s "$W/acl.b" "$W/acl.m"; then
	pass "getfacl -R: the same ACL entries through slowfs ($(grep -c '^# file' "$W/acl.b") entries with ACLs)"
else
	fail "getfacl -R differs through slowfs (or found no ACL)"
	diff "$W/acl.b" "$W/acl.m" | head -n 20 | sed 's/^/    /'
fi
assert_match 'user:2000:rw-' "$(cat "$W/acl.m")" "getfacl shows the named-user entry u:2000:rw"
(cd "$B" && getcap -r . 2>/dev/null | sort) >"$W/cap.b"
(cd "$M" && getcap -r . 2>/dev/null | sort) >"$W/cap.m"
assert_eq "$(wc -l <"$W/cap.b")" 3 "getcap -r: three files with capabilities in the backing tree"
assert_true "getcap -r: the same capabilities through slowfs" cmp -s "$W/cap.b" "$W/cap.m"

# inode numbers and link counts per path; symlink targets
(cd "$B" && find . -printf '%P\t%i\t%n\t%y\t%l\n' | LC_ALL=C sort) >"$W/ino.b"
(cd "$M" && find . -printf '%P\t%i\t%n\t%y\t%l\n' | LC_ALL=C sort) >"$W/ino.m1"
(cd "$M" && find . -printf '%P\t%i\t%n\t%y\t%l\n' | LC_ALL=C sort) >"$W/ino.m2"
assert_true "st_ino, st_nlink, type and symlink target of every path == backing" cmp -s "$W/ino.b" "$W/ino.m1"
assert_true "st_ino stable across two walks through slowfs" cmp -s "$W/ino.m1" "$W/ino.m2"
nl=$(awk -F'\t' '$4 == "f" && $3 > 1' "$W/ino.m1" | wc -l)
assert_ne "$nl" 0 "the tree has hard links ($nl paths with st_nlink > 1)"
assert_ne "$(awk -F'\t' '$4 == "l"' "$W/ino.m1" | wc -l)" 0 "the tree has symlinks"
dev1=$(stat -c %d "$M")
dev2=$(stat -c %d "$M/special")
assert_eq "$dev2" "$dev1" "one st_dev for the whole mount"

# --- the calls the test trees use, through slowfs --------------------------
t=$M/ops
mkdir "$t" && echo hello >"$t/f" && ln "$t/f" "$t/hl" && ln -s f "$t/sl" &&
	mv "$t/f" "$t/g" && mkdir "$t/d" && rmdir "$t/d" && truncate -s 3 "$t/g" &&
	chmod 0640 "$t/g" && chown 1234:2345 "$t/g" && touch -d '2001-02-03 04:05:06' "$t/g" &&
	setfattr -n user.x -v y "$t/g" && setfacl -m u:3000:r "$t/g" && setfattr -n user.z -v 1 "$t/g" &&
	setfattr -x user.z "$t/g" && unlink "$t/sl" && ln -s g "$t/sl"
assert_eq "$?" 0 "mkdir, create, write, link, symlink, rename, rmdir, truncate, chmod, chown, utimens, set/removexattr, unlink"
assert_eq "$(cat "$B/ops/hl")" hel "write + truncate reached the backing file (read through the hard link)"
assert_eq "$(stat -c '%a %u:%g %h %Y' "$B/ops/g")" "640 1234:2345 2 $(date -d '2001-02-03 04:05:06' +%s)" \
	"mode, owner, link count, mtime in the backing tree"
assert_eq "$(stat -c %i "$M/ops/g")" "$(stat -c %i "$B/ops/g")" "a new file's st_ino == the backing one"
assert_eq "$(getfattr --only-values -n user.x "$B/ops/g" 2>/dev/null)" y "user.x set in the backing tree"
assert_eq "$(getfattr -n user.z "$B/ops/g" 2>&1 | grep -c 'user.z=')" 0 "user.z removed in the backing tree"
assert_match 'user:3000:r--' "$(getfacl -p "$B/ops/g" 2>/dev/null)" "setfacl through slowfs reached the backing tree"
assert_eq "$(readlink "$B/ops/sl")" g "symlink target in the backing tree"
rm -rf "$t" || fail "rm -rf through slowfs"
assert_true "rm -rf through slowfs removed the directory" test ! -e "$B/ops"

# --- --jobs auto: a FUSE mount whose requests take DELAY us is latency-bound -
# (every request sleeps at least DELAY=200 us, far above the 50 us below
# which auto treats a filesystem as local: no timing decides this check)
J=$(new_jdir)
# (the default: neither --jobs nor an inherited VOLPERM_JOBS)
had_jobs=${VOLPERM_JOBS+x} saved_jobs=${VOLPERM_JOBS-}
unset VOLPERM_JOBS
vp_expect 0 "plan through slowfs with the default --jobs auto" plan --owner 1001:1001 --journal-dir "$J" "$M"
[ -n "$had_jobs" ] && export VOLPERM_JOBS=$saved_jobs
aj=$(sed -nE 's/^jobs: +([0-9]+) \(auto: fuse, [0-9.]+ ms a request\)$/\1/p' "$OUT")
if [ -n "$aj" ] && [ "$aj" -ge 16 ] && [ "$aj" -le 128 ]; then
	pass "auto on slowfs: $aj jobs (16..128), fuse and the latency named"
else
	fail "auto on slowfs: expected 16..128 jobs for fuse, got: $(grep '^jobs:' "$OUT")"
fi

# --- volperm apply through slowfs == chown -R -h ---------------------------
expect_counts "$B" 1001:1001 "$W/exp.json"
changed=$(find "$B" \( ! -uid 1001 -o ! -gid 1001 \) -printf x | wc -c)
n1=$(total "$M")
vp_expect 0 "apply --owner 1001:1001 --jobs 8 through slowfs" apply --owner 1001:1001 --jobs 8 --json --journal-dir "$J" "$M"
n2=$(total "$M")
cp "$OUT" "$W/apply.json"
vch=$(jsum "$W/apply.json" changes)
# volperm counts a hard-linked inode once, chown -R once per path.
if [ "$vch" = "$(jget "$W/exp.json" changes)" ] || [ "$vch" = "$(jget "$W/exp.json" changes_inodes)" ]; then
	pass "volperm changed every entry not owned by 1001:1001 ($vch; $changed paths)"
else
	fail "volperm reported $vch changes, expected $(jget "$W/exp.json" changes) (paths) or $(jget "$W/exp.json" changes_inodes) (inodes)"
fi

c1=$(total "$W/cmnt")
chown -R -h 1001:1001 "$W/cmnt" || fail "chown -R -h through slowfs"
c2=$(total "$W/cmnt")
chown -R -h 1001:1001 "$W/oracle" || die "chown -R -h"
snap "$B" "$W/b1.snap"
snap "$W/copy" "$W/c1.snap"
snap "$W/oracle" "$W/o1.snap"
snap_eq "$W/o1.snap" "$W/b1.snap" "volperm apply through slowfs == local chown -R -h (uid, gid, mode, ACLs, caps)"
snap_eq "$W/o1.snap" "$W/c1.snap" "chown -R -h through slowfs == local chown -R -h"

vreq=$((n2 - n1))
creq=$((c2 - c1))
if [ "$vreq" -gt 0 ] && [ "$creq" -gt 0 ] && [ "$vch" -gt 0 ]; then
	pass "the request counter moved: apply $vreq, chown -R -h $creq requests"
	say "# requests per changed entry ($changed paths, $vch inodes changed; delay ${DELAY} us):" \
		"volperm apply --jobs 8 $(awk -v a="$vreq" -v b="$vch" 'BEGIN { printf "%.2f", a / b }')," \
		"chown -R -h $(awk -v a="$creq" -v b="$changed" 'BEGIN { printf "%.2f", a / b }')"
	say "# requests by type since mount (walks, ops, apply): $(awk '$2 > 0 { printf "%s ", $0 }' "$M/.slowfs-stats")"
else
	fail "the request counter did not move (apply $vreq, chown $creq, changes '$vch')"
fi

# --- rollback through slowfs is exact ---------------------------------------
vp_expect 0 "rollback through slowfs" rollback --journal-dir "$J" "$M"
snap "$B" "$W/b2.snap"
snap_eq "$W/b0.snap" "$W/b2.snap" "rollback through slowfs restored the backing tree exactly"

# --- counts at unmount --------------------------------------------------------
umount "$M" || fail "umount $M"
for ((i = 0; i < 100; i++)); do
	grep -q '^total ' "$W/slowfs.mnt.err" && break
	sleep 0.1
done
assert_file_match '^slowfs: requests served' "$W/slowfs.mnt.err" "slowfs prints its counts at unmount"
assert_file_match '^setattr [1-9]' "$W/slowfs.mnt.err" "... setattr among them"

finish
