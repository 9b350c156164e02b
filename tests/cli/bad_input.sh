#!/usr/bin/env bash
# Bad input is refused with exit 2 and a clear message, and changes nothing:
# missing path, bad ids, no target, system paths, unsafe journal dirs,
# corrupt journals, a journal of another tree, an unwritable journal dir.
# A single file as PATH works.
. "$(dirname "$0")/lib.sh"
setup
need_cmd setfacl

J=$(new_jdir)
V=$W/vol
mktree "$V" 300 --seed 51 --acl-every 7 --setid 2
snap "$V" "$W/v0.snap" --ctime
unchanged() { # unchanged DESC: the volume is exactly as at the start (incl. ctime)
	snap "$V" "$W/now.snap" --ctime
	snap_eq "$W/v0.snap" "$W/now.snap" "$1: nothing changed"
}

# --- missing path ----------------------------------------------------------
for c in plan check apply; do
	vp_expect 2 "$c on a missing path" $c --owner 1001:1001 --journal-dir "$J" "$W/does-not-exist"
	assert_nonempty "$ERR" "$c on a missing path: message on stderr"
done
vp_expect 2 "apply without PATH" apply --owner 1001:1001 --journal-dir "$J"

# --- a single file as PATH ---------------------------------------------------
S=$W/single
mkdir "$S"
echo x >"$S/f"
echo y >"$S/g"
chown 1000:1000 "$S" "$S/f" "$S/g"
chmod 4755 "$S/f"
vp_expect 0 "plan on a single file" plan --owner 1001:1001 --json --journal-dir "$J" "$S/f"
assert_eq "$(jsum "$OUT" scanned)" 1 "single file: 1 entry scanned"
assert_eq "$(jsum "$OUT" changes)" 1 "single file: 1 change"
vp_expect 0 "apply on a single file" apply --owner 1001:1001 --json --journal-dir "$J" "$S/f"
assert_eq "$(jsum "$OUT" changes)" 1 "apply on a single file: 1 change"
assert_eq "$(owner_of "$S/f")" 1001:1001 "the file changed"
assert_eq "$(mode_of "$S/f")" 0755 "its setuid bit was cleared"
assert_eq "$(owner_of "$S/g")" 1000:1000 "its sibling did not change"
assert_eq "$(owner_of "$S")" 1000:1000 "its parent dir did not change"
vp_expect 0 "rollback of a single-file apply" rollback --journal-dir "$J" "$S/f"
assert_eq "$(owner_of "$S/f") $(mode_of "$S/f")" "1000:1000 4755" "single file restored (owner and setuid)"

# --- bad ids ---------------------------------------------------------------------
multi=()
for id in junk -1 4294967295 99999999999999999999 "" " 1001" "1001 " +1001 1001:junk \
	1001:-1 1001:4294967295 0x10 1e3 1001: 1001:1001:1001; do
	vp_expect 2 "apply --owner '$id' refused" apply --owner "$id" --journal-dir "$J" "$V"
	assert_file_match "^volperm: invalid owner '" "$ERR" "--owner '$id': 'volperm: invalid owner' message"
	[ "$(wc -l <"$ERR")" = 1 ] || multi+=("'$id' ($(wc -l <"$ERR") lines)")
done
if [ ${#multi[@]} = 0 ]; then
	pass "every invalid --owner gives exactly one line on stderr"
else
	fail "the contract's one-line message: more than one line on stderr for --owner ${multi[*]}; e.g.:"
	sed 's/^/    /' "$ERR"
fi
for m in junk 1000 1000:-1 -1:1000 1000:4294967295 99999999999999999999:1; do
	vp_expect 2 "apply --map '$m' refused" apply --map "$m" --journal-dir "$J" "$V"
	assert_nonempty "$ERR" "--map '$m': message on stderr"
	vp_expect 2 "apply --map-gid '$m' refused" apply --map-gid "$m" --journal-dir "$J" "$V"
done
vp_expect 0 "the largest valid id 4294967294 is accepted (plan)" plan --owner 4294967294:4294967294 --journal-dir "$J" "$V"
vp_expect 2 "--owner 0x3e9 is not a number" plan --owner 0x3e9 --journal-dir "$J" "$V"

# --- no target, unknown options, unknown command -------------------------------------
vp_expect 2 "apply without --owner/--map" apply --journal-dir "$J" "$V"
assert_nonempty "$ERR" "no target: message on stderr"
vp_expect 2 "plan without --owner/--map" plan --journal-dir "$J" "$V"
vp_expect 2 "check without --owner/--map" check --journal-dir "$J" "$V"
vp_expect 2 "unknown option" apply --owner 1001 --no-such-option --journal-dir "$J" "$V"
unchanged "bad ids / no target"

# --- system paths ------------------------------------------------------------------
# apply uses a --map of an id that owns nothing: even if the refusal were
# missing, nothing on the system would change.
ln -s /etc "$W/etc-link"
nj0=$(count_journals "$J")
for p in / /etc /usr /etc/ /usr/../etc "$W/etc-link" /var /home /root /boot /proc /sys /dev /bin /lib; do
	[ -e "$p" ] || continue
	vpt 120 plan --owner 1001:1001 --journal-dir "$J" "$p"
	expect_rc 2 "plan $p refused (system path)"
	vpt 120 apply --map 3999999999:3999999998 --journal-dir "$J" "$p"
	expect_rc 2 "apply $p refused (system path)"
	assert_nonempty "$ERR" "apply $p: message on stderr"
done
assert_eq "$(count_journals "$J")" "$nj0" "no journal for refused system paths"

# --- journal dir: group/world-writable, symlink, inside the volume ----------------------
for m in 0770 0777 0707 0720 0702; do
	BJ=$W/badj-$m
	mkdir "$BJ"
	chmod "$m" "$BJ"
	vp_expect 2 "journal dir mode $m refused" apply --owner 1001:1001 --journal-dir "$BJ" "$V"
	assert_nonempty "$ERR" "journal dir mode $m: message on stderr"
	assert_eq "$(find "$BJ" -mindepth 1 | wc -l)" 0 "journal dir mode $m: nothing written into it"
done
unchanged "unsafe journal dir modes"
OJ=$W/otherj
mkdir "$OJ"
chown 4444:4444 "$OJ"
chmod 0700 "$OJ"
vp_expect 2 "journal dir owned by another user refused" apply --owner 1001:1001 --journal-dir "$OJ" "$V"
ln -s "$J" "$W/jlink"
vp_expect 2 "journal dir that is a symlink refused" apply --owner 1001:1001 --journal-dir "$W/jlink" "$V"
vp_expect 2 "journal dir that is a symlink (trailing slash) refused" apply --owner 1001:1001 --journal-dir "$W/jlink/" "$V"
VOLPERM_JOURNAL_DIR=$W/jlink vp_expect 2 "VOLPERM_JOURNAL_DIR that is a symlink refused" apply --owner 1001:1001 "$V"
echo >"$W/jfile"
vp_expect 2 "journal dir that is a regular file refused" apply --owner 1001:1001 --journal-dir "$W/jfile" "$V"
unchanged "journal dir symlink / file / wrong owner"
mkdir -m 0700 "$V/.volperm-journal"
snap "$V" "$W/v0.snap" --ctime # the volume now holds the journal dir
vp_expect 2 "journal dir inside the volume refused" apply --owner 1001:1001 --journal-dir "$V/.volperm-journal" "$V"
assert_nonempty "$ERR" "journal dir inside the volume: message on stderr"
vp_expect 2 "journal dir = the volume root refused" apply --owner 1001:1001 --journal-dir "$V" "$V"
unchanged "journal dir inside the volume"
assert_eq "$(find "$V/.volperm-journal" -mindepth 1 | wc -l)" 0 "nothing written to the in-volume journal dir"
rmdir "$V/.volperm-journal"
snap "$V" "$W/v0.snap" --ctime

# --- a missing journal dir is created 0700 -------------------------------------------
V3=$W/vol3
mktree "$V3" 50 --seed 53
vp_expect 0 "apply with a missing journal dir" apply --owner 1001:1001 --journal-dir "$W/newj" "$V3"
assert_eq "$(stat -c %a "$W/newj" 2>/dev/null)" 700 "missing journal dir created with mode 0700"

# --- corrupt journal ---------------------------------------------------------------
C=$W/corrupt
mktree "$C" 1000 --seed 52 --acl-every 5
CJ=$(new_jdir)
vp_expect 0 "apply (to corrupt its journal)" apply --owner 1001:1001 --journal-dir "$CJ" "$C"
jf=$(newest_journal "$CJ")
size=$(stat -c %s "$jf")
off=$((size / 2))
say "# flipping the byte at offset $off of $size in $jf"
python3 - "$jf" "$off" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
PY
snap "$C" "$W/c0.snap" --ctime
vp_expect 2 "rollback of a corrupt journal refused" rollback --journal-dir "$CJ" "$C"
assert_file_match "corrupt|checksum|crc" "$ERR" "rollback names the corruption"
assert_file_match "$(basename "$jf")" "$ERR" "the message names the journal file"
vp_expect 2 "rollback --journal of a corrupt journal refused" rollback --journal "$jf" "$C"
assert_file_match "corrupt|checksum|crc" "$ERR" "rollback --journal names the corruption"
snap "$C" "$W/c1.snap" --ctime
snap_eq "$W/c0.snap" "$W/c1.snap" "corrupt journal: nothing changed"
# A corrupted header is refused too.
cp "$jf" "$W/keep.vpj"
printf 'X' | dd of="$jf" bs=1 seek=2 conv=notrunc status=none
vp_expect 2 "rollback with a corrupt header refused" rollback --journal "$jf" "$C"
snap "$C" "$W/c2.snap" --ctime
snap_eq "$W/c0.snap" "$W/c2.snap" "corrupt header: nothing changed"

# --- journal of another tree ------------------------------------------------------
A=$W/treeA
B=$W/treeB
mktree "$A" 200 --seed 54
mktree "$B" 200 --seed 54
AJ=$(new_jdir)
vp_expect 0 "apply on tree A" apply --owner 1001:1001 --journal-dir "$AJ" "$A"
ja=$(newest_journal "$AJ")
snap "$A" "$W/a0.snap" --ctime
snap "$B" "$W/b0.snap" --ctime
vp_expect 2 "rollback --journal A-journal treeB refused" rollback --journal "$ja" "$B"
assert_nonempty "$ERR" "another tree's journal: message on stderr"
snap "$A" "$W/a1.snap" --ctime
snap "$B" "$W/b1.snap" --ctime
snap_eq "$W/b0.snap" "$W/b1.snap" "tree B unchanged"
snap_eq "$W/a0.snap" "$W/a1.snap" "tree A unchanged"
# A same-named tree at the same path (recreated: new inode) is another tree too.
mv "$A" "$W/treeA.old"
cp -a "$W/treeA.old" "$A"
snap "$A" "$W/a2.snap" --ctime
vp_expect 2 "rollback on a recreated tree at the same path refused" rollback --journal "$ja" "$A"
snap "$A" "$W/a3.snap" --ctime
snap_eq "$W/a2.snap" "$W/a3.snap" "recreated tree unchanged"

# --- unwritable journal dir (read-only tmpfs) --------------------------------------
V=$W/vol4
mktree "$V" 300 --seed 55 --acl-every 7 --setid 2
snap "$V" "$W/v0.snap" --ctime
RJ=$W/rojournal
mkdir "$RJ"
if mount -t tmpfs -o ro,mode=0700 tmpfs "$RJ" 2>/dev/null; then
	vp apply --owner 1001:1001 --journal-dir "$RJ" "$V"
	if [ $RC -eq 2 ] || [ $RC -eq 3 ]; then
		pass "apply with a read-only journal dir fails (exit $RC)"
	else
		fail "apply with a read-only journal dir: expected exit 2 or 3, got $RC"
		show_run
	fi
	assert_nonempty "$ERR" "read-only journal dir: message on stderr"
	assert_file_match "read-only|journal" "$ERR" "read-only journal dir: the message says what is wrong"
	unchanged "read-only journal dir"
	umount "$RJ"
else
	say "SKIP-PART: cannot mount a read-only tmpfs: read-only journal dir not tested"
fi
# A journal dir with no space left: a tiny tmpfs.
FJ=$W/fulljournal
mkdir "$FJ"
if mount -t tmpfs -o size=4k,mode=0700 tmpfs "$FJ" 2>/dev/null; then
	dd if=/dev/zero of="$FJ/fill" bs=4k count=1 status=none 2>/dev/null
	vp_expect 1 "(the tree still needs changes)" check --owner 1001:1001 --journal-dir "$J" "$V"
	vp apply --owner 1001:1001 --journal-dir "$FJ" "$V"
	if [ $RC -eq 2 ] || [ $RC -eq 3 ]; then
		pass "apply with a full journal dir fails (exit $RC)"
	else
		fail "apply with a full journal dir: expected exit 2 or 3, got $RC"
		show_run
	fi
	unchanged "full journal dir"
	umount "$FJ"
fi

finish
