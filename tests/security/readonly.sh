#!/usr/bin/env bash
# Case 15: read-only and idmapped mounts. A volume on a read-only bind mount
# or a read-only tmpfs: one clear sentence (read-only), exit 3, before any
# change and before any journal (also with --no-journal). A read-only mount
# nested in a writable volume entered with --cross-mounts: the apply stops
# at the first EROFS, rolls back, exit 3, nothing changed. A rollback on a
# volume remounted read-only fails without harm and works once it is
# writable again. An idmapped mount whose map cannot represent the target
# id: the apply stops and rolls back (exit 2 or 3), nothing changed; ids the
# map can represent are written through it to the right on-disk ids.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd mount umount

J=$(new_jdir)
mkvol() {
	mkdir -p "$1/d/e"
	echo a >"$1/a"
	echo f >"$1/d/e/f"
	chown -R 1000:1000 "$1"
	chmod 4755 "$1/a"
}
unchanged() { local s=$W/u.$RANDOM.snap; snap "$1" "$s" --ctime; snap_eq "$2" "$s" "$3"; }

# --- a read-only bind mount --------------------------------------------------------
V=$W/vol
mkvol "$V"
mkdir "$W/ro"
mount --bind "$V" "$W/ro" && mount -o remount,bind,ro "$W/ro" || die "read-only bind mount"
snap "$V" "$W/v0.snap" --ctime
for extra in "" "--no-journal" "--keep-going"; do
	# shellcheck disable=SC2086
	vp "apply" --owner 1001:1001 $extra --journal-dir "$J" "$W/ro"
	expect_rc 3 "ro bind mount, apply $extra: exit 3"
	one_line_err "$ERR" "ro bind mount, apply $extra"
	assert_file_match 'read-only' "$ERR" "ro bind mount, apply $extra: says read-only"
	unchanged "$V" "$W/v0.snap" "ro bind mount, apply $extra: nothing changed"
	no_journal_files "$J" "ro bind mount, apply $extra: no journal"
done
vp "apply" --owner 1001:1001 --json --journal-dir "$J" "$W/ro"
json_ok "$OUT" "ro bind mount, --json: valid NDJSON"
assert_eq "$(jcount "$OUT" error)" 0 "ro bind mount, --json: no per-entry error events"
assert_match 'read-only' "$(jsum "$OUT" message)" "ro bind mount, --json: summary.message says read-only"
vp_expect 0 "ro bind mount: plan works" plan --owner 1001:1001 --journal-dir "$J" "$W/ro"
umount "$W/ro"

# --- a read-only tmpfs ---------------------------------------------------------------------
T=$W/tmpfs
mkdir "$T"
mount -t tmpfs -o size=2m tmpfs "$T" || die "mount tmpfs"
mkvol "$T"
mount -o remount,ro "$T" || die "remount tmpfs read-only"
snap "$T" "$W/t0.snap" --ctime
vp "apply" --owner 1001:1001 --journal-dir "$J" "$T"
expect_rc 3 "ro tmpfs: exit 3"
one_line_err "$ERR" "ro tmpfs"
unchanged "$T" "$W/t0.snap" "ro tmpfs: nothing changed"
no_journal_files "$J" "ro tmpfs: no journal"

# --- a read-only mount nested in a writable volume, --cross-mounts ------------------------------
V2=$W/vol2
mkvol "$V2"
mkdir "$V2/zz-ro"
mount --bind "$T" "$V2/zz-ro" && mount -o remount,bind,ro "$V2/zz-ro" || die "nested ro mount"
snap "$V2" "$W/n0.snap" --xdev
vp "apply" --owner 1001:1001 --cross-mounts --journal-dir "$J" "$V2"
expect_rc 3 "nested ro mount with --cross-mounts: stops, rolls back, exit 3"
assert_file_match 'read-only|Read-only' "$ERR" "nested ro mount: the error says read-only"
assert_true "nested ro mount: a few lines on stderr, not one per entry ($(wc -l <"$ERR"))" test "$(wc -l <"$ERR")" -le 3
s=$W/n1.snap
snap "$V2" "$s" --xdev
snap_eq "$W/n0.snap" "$s" "nested ro mount: everything rolled back (owners, 4755)"
unchanged "$T" "$W/t0.snap" "nested ro mount: the ro fs itself unchanged"
umount "$V2/zz-ro"

# --- rollback on a volume that became read-only ------------------------------------------------------
vp_expect 0 "apply on a writable volume" apply --owner 1001:1001 --journal-dir "$J" "$V"
snap "$V" "$W/v1.snap" --ctime
mount --bind "$V" "$W/ro" && mount -o remount,bind,ro "$W/ro" || die "ro bind mount"
vp "rollback" --journal-dir "$J" "$W/ro"
assert_true "rollback on the read-only view: fails (exit $RC)" test "$RC" != 0
unchanged "$V" "$W/v1.snap" "rollback on read-only: nothing changed"
assert_true "rollback on read-only: a few lines on stderr ($(wc -l <"$ERR"))" test "$(wc -l <"$ERR")" -le 3
umount "$W/ro"
vp "rollback" --journal-dir "$J" "$V"
expect_rc_in "0" "rollback once writable again"
s=$W/v2.snap
snap "$V" "$s"
snap_eq "$W/v0.snap" "$s" "rolled back exactly" --ignore-field ctime

# --- idmapped mount ----------------------------------------------------------------------------------
V3=$W/vol3
mkvol "$V3"
mkdir "$W/idm"
if python3 "$SEC/idmount.py" "$V3" "$W/idm" "0 100000 65536" 2>"$W/idm.err"; then
	assert_eq "$(owner_of "$W/idm/a")" 101000:101000 "idmapped mount shows on-disk 1000 as 101000"
	snap "$V3" "$W/i0.snap"
	vp "apply" --owner 1001:1001 --journal-dir "$J" "$W/idm"
	expect_rc_in "2 3" "idmapped: target 1001 not representable through the mount"
	assert_true "idmapped: a few lines on stderr, not one per entry ($(wc -l <"$ERR"))" test "$(wc -l <"$ERR")" -le 3
	snap "$V3" "$W/i1.snap"
	snap_eq "$W/i0.snap" "$W/i1.snap" "idmapped, unrepresentable target: nothing changed on disk"
	vp_expect 0 "idmapped: apply --owner 101001:101001 (representable)" apply --owner 101001:101001 --journal-dir "$J" "$W/idm"
	assert_eq "$(owner_of "$V3/d/e/f") $(mode_of "$V3/a")" "1001:1001 0755" "idmapped: written to disk as 1001, setuid cleared"
	vp_expect 0 "idmapped: rollback through the mount" rollback --journal-dir "$J" "$W/idm"
	snap "$V3" "$W/i2.snap"
	snap_eq "$W/i0.snap" "$W/i2.snap" "idmapped: rolled back exactly on disk"
	umount "$W/idm"
elif on_slowfs; then
	# FUSE allows an idmapped mount only when the server asks for it
	# (FUSE_ALLOW_IDMAP, kernel 6.12 and libfuse 3.17); slowfs does not
	say "SKIP-PART: on slowfs: FUSE gives no idmapped mount to a server that does not ask for one (FUSE_ALLOW_IDMAP): $(cat "$W/idm.err")"
else
	say "SKIP-PART: idmapped mounts not available here: $(cat "$W/idm.err")"
fi

finish
