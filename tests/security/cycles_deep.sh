#!/usr/bin/env bash
# Case 6: directory cycles made with bind mounts (the volume bound into its
# own subdirectory, and a dir bound into its own child), and a tree deeper
# than 1000 levels whose paths are longer than PATH_MAX (4096), with a hard
# link pair spanning the top and the bottom and a symlink at the bottom: no
# crash, no loop (bounded by a timeout), every entry changed exactly once,
# and rollback restores the tree exactly (checked with find).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd mount umount find

J=$(new_jdir)

# --- cycles ---------------------------------------------------------------
V=$W/cyc
mkdir -p "$V/sub/loop" "$V/a/b/c/self"
echo f >"$V/sub/f"
echo g >"$V/a/b/c/g"
chown -R 1000:1000 "$V"
mount --bind "$V" "$V/sub/loop" || die "bind mount of the volume into itself"
mount --bind "$V/a/b" "$V/a/b/c/self" || die "bind mount of a dir into its child"

vpt 30 plan --owner 1001:1001 --json --journal-dir "$J" "$V"
expect_rc 0 "plan on a tree with bind-mount cycles terminates (rule skips: exit 0)"
vpt 30 apply --owner 1001:1001 --json --journal-dir "$J" "$V"
expect_rc 0 "apply on a tree with bind-mount cycles terminates (exit 0)"
json_ok "$OUT" "NDJSON valid"
assert_eq "$(jpaths "$OUT" skip "$V" | tr '\n' ' ')" "a/b/c/self sub/loop " "both cycle mount points skipped (mount-point)"
assert_eq "$(jpaths "$OUT" change "$V" | sort | uniq -d | head -n 3)" "" "no entry changed twice"
assert_eq "$(owner_of "$V/sub/f") $(owner_of "$V/a/b/c/g") $(owner_of "$V")" "1001:1001 1001:1001 1001:1001" "the tree changed"
vp_expect 0 "rollback" rollback --journal-dir "$J" "$V"
assert_eq "$(owner_of "$V/sub/f") $(owner_of "$V")" "1000:1000 1000:1000" "rolled back"

vpt 30 apply --owner 1001:1001 --cross-mounts --json --journal-dir "$J" "$V"
expect_rc 0 "apply --cross-mounts through the cycles terminates (fs-cycle is a rule skip: exit 0)"
json_ok "$OUT" "--cross-mounts NDJSON valid"
assert_eq "$(jpaths "$OUT" skip "$V" reason=fs-cycle | tr '\n' ' ')" "a/b/c/self sub/loop " "--cross-mounts: both cycles reported as fs-cycle"
assert_eq "$(jpaths "$OUT" change "$V" | sort | uniq -d | head -n 3)" "" "--cross-mounts: no entry changed twice"
assert_eq "$(jpaths "$OUT" change "$V" | tr '\n' ' ')" ". a a/b a/b/c a/b/c/g sub sub/f " "--cross-mounts: every real entry changed once"
vp_expect 0 "rollback of --cross-mounts" rollback --journal-dir "$J" "$V"
assert_eq "$(find "$V" -xdev \( ! -user 1000 -o ! -group 1000 \) -printf '%P\n' 2>/dev/null | head -n 3)" "" "rolled back"
umount "$V/a/b/c/self" "$V/sub/loop"

# --- deeper than 1000 levels, paths beyond PATH_MAX ---------------------------
V=$W/deep
DEPTH=1100
python3 - "$V" "$DEPTH" <<'PY' || die "building the deep tree"
import os, sys
root, depth = sys.argv[1], int(sys.argv[2])
os.mkdir(root)
fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
os.chown(root, 1000, 1000)
with open(os.path.join(root, "top-link"), "w") as f:
    f.write("x")
os.chown(os.path.join(root, "top-link"), 1000, 1000)
for i in range(depth):
    name = "lvl%04d" % i
    os.mkdir(name, dir_fd=fd)
    os.chown(name, 1000, 1000, dir_fd=fd)
    if i % 100 == 0:
        f = "f%04d" % i
        os.close(os.open(f, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
        os.chown(f, 1000, 1000, dir_fd=fd)
        os.chmod(f, 0o4755, dir_fd=fd)  # after chown, which clears it
    nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
# the bottom: a file, a symlink out, and the second link of top-link
os.close(os.open("bottom", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
os.chown("bottom", 1000, 1000, dir_fd=fd)
os.symlink("/etc/passwd", "out-link", dir_fd=fd)
os.chown("out-link", 1000, 1000, dir_fd=fd, follow_symlinks=False)
os.link("top-link", "bottom-link", src_dir_fd=top, dst_dir_fd=fd)
PY
nsuid=$(find "$V" -perm -4000 | wc -l)
assert_eq "$nsuid" 11 "deep: 11 setuid files at levels 0, 100, ..., 1000"
plen=$(find "$V" -name bottom -printf '%p' | wc -c)
say "# deep tree: depth $DEPTH, $(entries "$V") entries, longest path $plen bytes"
assert_true "deepest path is longer than PATH_MAX ($plen > 4096)" test "$plen" -gt 4096
find "$V" -printf '%P %u:%g %m %y\n' | sort >"$W/deep0.list"
nall=$(wc -l <"$W/deep0.list")

vpt 50 apply --owner 1001:1001 --json --journal-dir "$J" "$V"
expect_rc 0 "apply on the deep tree (exit 0)"
json_ok "$OUT" "deep: NDJSON valid"
assert_eq "$(jsum "$OUT" changes)" "$((nall - 1))" "deep: every inode changed once ($((nall - 1)): the hard link pair once)"
assert_eq "$(find "$V" \( ! -user 1001 -o ! -group 1001 \) -printf '%P\n' | head -n 3)" "" "deep: find sees every entry 1001:1001, down to the bottom"
assert_eq "$(find "$V" -perm -4000 -printf '%P\n' | head -n 3)" "" "deep: setuid cleared at every level"
assert_eq "$(find "$V" -name bottom-link -printf '%u:%g')" 1001:1001 "deep: the hard link spanning top and bottom changed (via a > PATH_MAX path)"
vpt 50 check --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc 0 "deep: check compliant"
vpt 50 rollback --journal-dir "$J" "$V"
expect_rc 0 "deep: rollback (exit 0)"
find "$V" -printf '%P %u:%g %m %y\n' | sort >"$W/deep1.list"
if cmp -s "$W/deep0.list" "$W/deep1.list"; then
	pass "deep: rollback restored every entry exactly (owners, 4755 modes; find)"
else
	fail "deep: rollback differs:"
	diff "$W/deep0.list" "$W/deep1.list" | head -n 10 | cut -c1-200 | sed 's/^/    /'
fi

finish
