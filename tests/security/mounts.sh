#!/usr/bin/env bash
# Case 5: nested mounts inside the volume are not entered and not changed,
# and are reported (skip mount-point, exit 0): a tmpfs, a bind mount of a host
# dir (the decoy), a bind mount of a single host file over a volume file, and
# bind mounts of the same filesystem at names that /proc/self/mountinfo has to
# escape (space, tab, newline, backslash), which st_dev cannot tell apart.
# With --cross-mounts they are entered (tmpfs, a host dir that is not the
# decoy), and rollback restores them. (Loop-mounted ext4: mounts_loop.sh.)
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd mount umount

J=$(new_jdir)
E=$W/etc
make_decoy "$E"
V=$W/vol
mkdir -p "$V/tmp" "$V/hostdir" "$V/deep/er/mnt" "$V/with space" "$V/tab	x" "$V/new
line" "$V/back\\slash" "$V/plain"
echo mine >"$V/conf"
chown -R 1000:1000 "$V"

mount -t tmpfs -o mode=0755,size=4m tmpfs "$V/tmp" || die "mount tmpfs"
mkdir "$V/tmp/d"
echo t >"$V/tmp/d/f"
chown -R 1000:1000 "$V/tmp"
mount --bind "$E" "$V/hostdir" || die "bind mount of the decoy dir"
mount --bind "$E/passwd" "$V/conf" || die "bind mount of a decoy file over a volume file"
mount --bind "$E/sub" "$V/deep/er/mnt" || die "deep bind mount"
for n in "with space" "tab	x" "new
line" "back\\slash"; do
	mount --bind "$E/sudoers.d" "$V/$n" || die "bind mount at a hostile name"
done
decoy_snap "$E" "$W/decoy0.snap"
snap "$V/tmp" "$W/tmp0.snap" --ctime
skips_want=$(printf '%s\n' conf deep/er/mnt hostdir tmp "with space" "tab	x" "new
line" "back\\slash" | python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
from vptest import esc
names = sys.stdin.buffer.read().split(b"\n")[:-1]
names = [n if n != b"new" else b"new\nline" for n in names if n != b"line"]
print(" ".join(sorted(esc(n) for n in names)))' "$TOOLS")

vp_expect 0 "plan --json with 8 nested mounts (rule skips: exit 0)" plan --owner 1001:1001 --json --journal-dir "$J" "$V"
assert_eq "$(jpaths "$OUT" skip "$V" reason=mount-point | tr '\n' ' ' | sed 's/ $//')" "$skips_want" "plan: every mount point reported as skip mount-point"
vp_expect 0 "apply --json: nested mounts skipped (exit 0)" apply --owner 1001:1001 --json --journal-dir "$J" "$V"
json_ok "$OUT" "apply NDJSON valid"
assert_eq "$(jpaths "$OUT" skip "$V" reason=mount-point | tr '\n' ' ' | sed 's/ $//')" "$skips_want" "apply: every mount point reported as skip mount-point"
assert_eq "$(jsum "$OUT" skip_reasons.mount-point)" 8 "summary: 8 mount-point skips"
assert_eq "$(jpaths "$OUT" change "$V" | grep -cE '^(tmp|hostdir|conf|deep/er/mnt)(/|$)')" 0 "no change event at or below a mount point"
decoy_same "$E" "$W/decoy0.snap" "decoy (bound at 6 places in the volume) untouched"
snap "$V/tmp" "$W/tmp1.snap" --ctime
snap_eq "$W/tmp0.snap" "$W/tmp1.snap" "tmpfs contents and its root untouched"
assert_eq "$(owner_of "$V/plain") $(owner_of "$V/deep/er") $(owner_of "$V")" "1001:1001 1001:1001 1001:1001" "the rest of the volume changed"
vp_expect 0 "check: compliant apart from the mounts" check --owner 1001:1001 --journal-dir "$J" "$V"
vp_expect 0 "rollback" rollback --journal-dir "$J" "$V"
decoy_same "$E" "$W/decoy0.snap" "decoy untouched by rollback"

# --- --cross-mounts enters (decoy mounts removed first: entering them is the
# admin's explicit choice and would change them) ----------------------------
umount "$V/hostdir" "$V/conf" "$V/deep/er/mnt"
for n in "with space" "tab	x" "new
line" "back\\slash"; do umount "$V/$n"; done
HOST=$W/hostdata
mkdir -p "$HOST/x"
echo h >"$HOST/x/f"
chown -R 1000:1000 "$HOST"
mount --bind "$HOST" "$V/hostdir" || die "bind mount of a host dir"
snap "$HOST" "$W/host0.snap"
snap "$V/tmp" "$W/tmp2.snap"
vp_expect 0 "apply --cross-mounts" apply --owner 1001:1001 --cross-mounts --json --journal-dir "$J" "$V"
assert_eq "$(jsum "$OUT" skip_reasons.mount-point)" 0 "--cross-mounts: no mount-point skips"
assert_eq "$(owner_of "$V/tmp") $(owner_of "$V/tmp/d/f")" "1001:1001 1001:1001" "--cross-mounts: tmpfs entered and changed"
assert_eq "$(owner_of "$HOST/x/f")" 1001:1001 "--cross-mounts: bound host dir entered"
vp_expect 0 "rollback of --cross-mounts apply" rollback --journal-dir "$J" "$V"
snap "$HOST" "$W/host1.snap"
snap_eq "$W/host0.snap" "$W/host1.snap" "rollback restored the bound host dir"
snap "$V/tmp" "$W/tmp3.snap"
snap_eq "$W/tmp2.snap" "$W/tmp3.snap" "rollback restored the tmpfs"

# --- a mount appearing after the apply: rollback does not cross into it ------
vp_expect 0 "apply (no mounts crossed)" apply --owner 1002:1002 --journal-dir "$J" "$V"
umount "$V/hostdir"
mkdir -p "$W/later"
echo l >"$W/later/f"
mount --bind "$W/later" "$V/plain" || die "bind mount over a changed dir"
snap "$W/later" "$W/later0.snap" --ctime
vp "rollback" --json --journal-dir "$J" "$V"
expect_rc 6 "rollback with a mount now over a journaled dir: a conflict (exit 6)"
assert_eq "$(jpaths "$OUT" conflict "$V" | tr '\n' ' ')" "plain " "rollback: conflict for the covered dir"
snap "$W/later" "$W/later1.snap" --ctime
snap_eq "$W/later0.snap" "$W/later1.snap" "rollback did not touch the dir mounted over the journaled one"

finish
