#!/usr/bin/env bash
# Case 5, loop device: a loop-mounted ext4 filesystem nested in the volume is
# not entered (skip mount-point, exit 0, nothing on it changed); entered with
# --cross-mounts; rolled back exactly. And a volume that is itself a loop
# ext4 filesystem with a nested tmpfs. Skips (loudly) only when loop devices
# do not work here.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd mkfs.ext4 mount umount truncate

J=$(new_jdir)
V=$W/vol
mkdir -p "$V/ext" "$V/data"
echo mine >"$V/data/f"
IMG=$W_REAL/ext4.img # (off slowfs: tests/cli/lib.sh)
truncate -s 16M "$IMG" && mkfs.ext4 -q -F "$IMG" || die "mkfs.ext4 failed"
if ! mount -o loop "$IMG" "$V/ext" 2>"$W/loop.err"; then
	skip "loop devices do not work here: mount -o loop: $(cat "$W/loop.err")"
fi
mkdir -p "$V/ext/inner/deeper"
echo e >"$V/ext/inner/f"
printf '#!/bin/sh\n' >"$V/ext/inner/deeper/suid"
chmod 4755 "$V/ext/inner/deeper/suid"
chown -R 1000:1000 "$V"
chmod 4755 "$V/ext/inner/deeper/suid"
snap "$V/ext" "$W/ext0.snap" --ctime

vp_expect 0 "apply with a nested loop ext4 (rule skip: exit 0)" apply --owner 1001:1001 --json --journal-dir "$J" "$V"
assert_eq "$(jpaths "$OUT" skip "$V" reason=mount-point)" ext "skip mount-point event for ext"
assert_eq "$(jpaths "$OUT" change "$V" | grep -c '^ext')" 0 "nothing at or below the loop mount planned or changed"
snap "$V/ext" "$W/ext1.snap" --ctime
snap_eq "$W/ext0.snap" "$W/ext1.snap" "loop ext4 untouched (ctime included)"
assert_eq "$(owner_of "$V/data/f")" 1001:1001 "the volume's own files changed"
vp_expect 0 "rollback" rollback --journal-dir "$J" "$V"

snap "$V/ext" "$W/ext2.snap"
vp_expect 0 "apply --cross-mounts enters the loop ext4" apply --owner 1001:1001 --cross-mounts --json --journal-dir "$J" "$V"
assert_eq "$(owner_of "$V/ext") $(owner_of "$V/ext/inner/f")" "1001:1001 1001:1001" "--cross-mounts: loop ext4 changed"
assert_eq "$(mode_of "$V/ext/inner/deeper/suid")" 0755 "--cross-mounts: setuid cleared on the loop fs"
vp_expect 0 "rollback of --cross-mounts" rollback --journal-dir "$J" "$V"
snap "$V/ext" "$W/ext3.snap"
snap_eq "$W/ext2.snap" "$W/ext3.snap" "rollback restored the loop ext4 exactly (setuid back)"

# --- the volume is the loop fs; a tmpfs nested in it -------------------------------
V2=$V/ext
mkdir -p "$V2/t"
mount -t tmpfs -o size=1m tmpfs "$V2/t" || die "mount tmpfs"
echo t >"$V2/t/f"
chown 1000:1000 "$V2/t" "$V2/t/f"
vp_expect 0 "apply on the loop fs as the volume, tmpfs nested" apply --owner 1002:1002 --json --journal-dir "$J" "$V2"
assert_eq "$(jpaths "$OUT" skip "$V2" reason=mount-point)" t "skip mount-point: t"
assert_eq "$(owner_of "$V2/t/f")" 1000:1000 "tmpfs inside the loop fs untouched"
assert_eq "$(owner_of "$V2/inner/f")" 1002:1002 "loop fs changed"
jf=$(newest_journal "$J")
vp_expect 0 "journal of the loop volume names its root" journal show --journal-dir "$J" "$jf"
assert_file_match "$V2" "$OUT" "journal header root is the loop volume"
vp_expect 0 "rollback" rollback --journal-dir "$J" "$V2"
assert_eq "$(owner_of "$V2/inner/f")" 1000:1000 "rollback restored the loop fs"
umount "$V2/t"
umount "$V/ext"

finish
