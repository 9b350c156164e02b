#!/usr/bin/env bash
# A btrfs subvolume inside the volume has an st_dev of its own but is no
# mount point: it is skipped and reported as a subvolume (not as a "nested
# mount point"), its entries stay as they are; --cross-mounts enters it,
# and rollback restores what that changed (entries whose st_dev differs
# from the root's).
. "$(dirname "$0")/lib.sh"
setup
need_cmd mount umount truncate mkfs.btrfs btrfs

truncate -s 256M "$W/b.img"
mkfs.btrfs -q -f "$W/b.img" >"$W/mkfs.log" 2>&1 || skip "mkfs.btrfs failed: $(head -c 200 "$W/mkfs.log")"
M=$W/m
mkdir "$M"
mount -o loop "$W/b.img" "$M" 2>"$W/mount.err" || skip "cannot mount a btrfs loop image: $(cat "$W/mount.err")"
V=$M/vol
J=$M/journal
mkdir -m 0700 "$J"
mkdir "$V"
mktree "$V/plain" 200 --seed 3
btrfs subvolume create "$V/sub" >/dev/null || die "btrfs subvolume create"
mktree "$V/sub/data" 100 --seed 4
[ "$(stat -c %d "$V/sub")" != "$(stat -c %d "$V")" ] || die "the subvolume has the volume's st_dev (test setup)"
snap "$V" "$W/before"

vp apply --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc 0 "apply: done; the subvolume skipped by rule (as a nested mount is)"
assert_file_match "sub: skipped \\(btrfs subvolume, not entered; --cross-mounts enters it\\)" "$ERR" \
	"the subvolume is reported as a subvolume, and how to enter it"
assert_file_nomatch "nested mount point" "$ERR" "... not as a nested mount point"
assert_file_match "subvolume 1" "$OUT" "the summary counts it as 'subvolume'"
assert_eq "$(owner_of "$V/sub/data")" "0:0" "entries in the subvolume are unchanged"
assert_eq "$(owner_of "$V/plain")" "1001:1001" "entries outside it are changed"

vp apply --owner 1001:1001 --json --journal-dir "$J" "$V"
assert_eq "$(jpaths "$OUT" skip "$V")" "sub" "--json: one skip, the subvolume"
assert_true "--json: its reason is 'subvolume'" grep -q '"reason":"subvolume"' "$OUT"

vp_expect 0 "rollback of the first apply (the second changed nothing)" rollback -q --journal-dir "$J" "$V"
snap "$V" "$W/after-rb"
snap_eq "$W/before" "$W/after-rb" "rollback restores the tree"

vp_expect 0 "apply --cross-mounts enters the subvolume" apply -q --cross-mounts --owner 1001:1001 --journal-dir "$J" "$V"
assert_eq "$(owner_of "$V/sub/data")" "1001:1001" "... entries in the subvolume are changed"
assert_eq "$(find "$V" ! -uid 1001 | wc -l)" 0 "... every entry is 1001 now"
vp_expect 0 "rollback of the --cross-mounts apply" rollback -q --journal-dir "$J" "$V"
snap "$V" "$W/after-rb2"
snap_eq "$W/before" "$W/after-rb2" "rollback restores the subvolume's entries too"
finish
