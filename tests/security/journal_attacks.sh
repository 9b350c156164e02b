#!/usr/bin/env bash
# Case 11: attacks on the journal. Refused with a clear message and nothing
# changed (volume snapshot with ctime; decoys byte-identical):
#   journal dir: a symlink; group/world-writable; owned by a non-root user;
#     inside the volume; the volume's own subdir bind-mounted elsewhere (the
#     same volume mounted twice, as with two docker -v of one volume)
#   lock file pre-planted as a symlink to a decoy; a FIFO planted under a
#     journal name (must not hang anything); a journal name planted as a
#     symlink to a decoy journal
#   a journal edited by hand (checksum; the message names file and offset),
#     truncated in its header, or cut at its end (a crash: handled as one)
#   a journal of another volume (--journal, and renamed to this volume's
#     name), of another run (swapped in for the newest), an older copy put
#     back after rollback (replay), --journal in a world-writable dir or
#     given as a symlink
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd mkfifo

E=$W/etc
make_decoy "$E"
decoy_snap "$E" "$W/decoy0.snap"

newvol() { # NAME: a small 1000-owned volume
	local v=$W/$1
	mkdir -p "$v/sub/deeper"
	echo a >"$v/a"
	echo b >"$v/sub/b"
	echo c >"$v/sub/deeper/c"
	chown -R 1000:1000 "$v"
	chmod 4755 "$v/a"
	printf '%s\n' "$v"
}

# unchanged V SNAP DESC: the volume is as in SNAP (ctime included).
unchanged() { local s=$W/u.$RANDOM.snap; snap "$1" "$s" --ctime; snap_eq "$2" "$s" "$3"; }

V=$(newvol vol)
snap "$V" "$W/v0.snap" --ctime

# --- unsafe journal dirs -----------------------------------------------------------
GOOD=$(new_jdir)
ln -s "$GOOD" "$W/jd-symlink"
mkdir -m 0770 "$W/jd-group"
mkdir -m 0777 "$W/jd-world"
mkdir -m 1777 "$W/jd-sticky"
mkdir -m 0700 "$W/jd-user"
chown 1000:1000 "$W/jd-user"
mkdir -m 0700 "$V/.volperm"
snap "$V" "$W/v0.snap" --ctime
for case in "jd-symlink:symbolic link" "jd-group:writable" "jd-world:writable" "jd-sticky:writable" \
	"jd-user:owned" "$V/.volperm:inside"; do
	jd=${case%%:*}
	word=${case#*:}
	case $jd in /*) ;; *) jd=$W/$jd ;; esac
	vp "apply" --owner 1001:1001 --journal-dir "$jd" "$V"
	expect_rc 2 "journal dir $(basename "$jd") ($word): refused"
	one_line_err "$ERR" "journal dir $(basename "$jd")"
	assert_file_match "$word" "$ERR" "journal dir $(basename "$jd"): the message says '$word'"
	unchanged "$V" "$W/v0.snap" "journal dir $(basename "$jd"): volume unchanged"
	assert_eq "$(find "$jd/" -mindepth 1 | wc -l)" 0 "journal dir $(basename "$jd"): nothing written into it"
done
VOLPERM_JOURNAL_DIR=$W/jd-world "$VP" apply --owner 1001:1001 "$V" >/dev/null 2>"$W/env.err"
assert_eq "$?" 2 "VOLPERM_JOURNAL_DIR pointing at a world-writable dir: refused (exit 2)"
rmdir "$V/.volperm"

# the volume's own subdir, bind-mounted outside: the journal would land in the tree
if mount --bind "$V/sub" "$W/jd-bind" 2>/dev/null || { mkdir -p "$W/jd-bind" && mount --bind "$V/sub" "$W/jd-bind"; }; then
	mkdir -m 0700 "$V/sub/jd"
	chown 0:0 "$V/sub/jd"
	snap "$V" "$W/vb0.snap" --ctime
	vp "apply" --owner 1001:1001 --journal-dir "$W/jd-bind/jd" "$V"
	expect_rc 2 "journal dir reached through a bind mount of the volume's own subdir: refused (inside)"
	assert_eq "$(find "$V/sub/jd" -mindepth 1 | wc -l)" 0 "no journal written into the volume through the bind mount"
	unchanged "$V" "$W/vb0.snap" "bind-mounted journal dir: volume unchanged"
	vp "rollback" --journal-dir "$W/jd-bind/jd" "$V"
	umount "$W/jd-bind"
	rm -rf "$V/sub/jd"
	chown 1000:1000 "$V/sub" "$V"
else
	fail "mount --bind failed"
fi
V=$(newvol vol2)
snap "$V" "$W/v0.snap" --ctime

# --- planted lock file, planted journal names ---------------------------------------
J=$(new_jdir)
read -r dev ino < <(stat -c '%d %i' "$V")
lockname=$(printf 'vp-%016x-%016x.lock' "$dev" "$ino")
ln -s "$E/passwd" "$J/$lockname"
vpt 20 apply --owner 1001:1001 --journal-dir "$J" "$V"
assert_true "lock file planted as a symlink: apply refuses (exit $RC, not 0)" test "$RC" != 0 -a "$RC" != 124
unchanged "$V" "$W/v0.snap" "planted lock symlink: volume unchanged"
decoy_same "$E" "$W/decoy0.snap" "planted lock symlink: its target (decoy passwd) untouched"
rm -f "$J/$lockname"

fake=$(printf 'vp-%016x-%016x-%016x.vpj' "$dev" "$ino" 1)
mkfifo -m 0600 "$J/$fake"
for cmd in plan check apply; do
	vpt 3 "$cmd" --owner 1001:1001 --journal-dir "$J" "$V"
	assert_true "$cmd with a FIFO planted under a journal name: no hang (exit $RC)" test "$RC" != 124 -a "$RC" -lt 128
done
vpt 3 journal list --journal-dir "$J"
assert_true "journal list with a planted FIFO: no hang (exit $RC)" test "$RC" != 124
vpt 3 rollback --journal-dir "$J" "$V"
assert_true "rollback with a planted FIFO: no hang (exit $RC)" test "$RC" != 124
rm -f "$J/$fake"
V=$(newvol vol3)
snap "$V" "$W/v0.snap" --ctime
read -r dev ino < <(stat -c '%d %i' "$V")

# a real journal of this volume, kept aside as the decoy journal
J=$(new_jdir)
vp_expect 0 "apply (to get a journal)" apply --owner 1001:1001 --journal-dir "$J" "$V"
jf=$(newest_journal "$J")
snap "$V" "$W/v1.snap" --ctime
mkdir -m 0700 "$W/aside"
cp -p "$jf" "$W/aside/j1"
fake=$(printf 'vp-%016x-%016x-%016x.vpj' "$dev" "$ino" 0xffffffffffffffff)
ln -s "$W/aside/j1" "$J/$fake" # the "newest" journal is a symlink
vp "rollback" --journal-dir "$J" "$V"
assert_true "newest journal name planted as a symlink: not followed (exit $RC, not 0)" test "$RC" != 0
unchanged "$V" "$W/v1.snap" "planted journal symlink: volume unchanged"
vp "rollback" --journal "$J/$fake" "$V"
expect_rc 2 "rollback --journal SYMLINK: refused"
unchanged "$V" "$W/v1.snap" "rollback --journal SYMLINK: volume unchanged"
rm -f "$J/$fake"

# --- --journal in a world-writable dir -----------------------------------------------
mkdir -m 1777 "$W/ww"
cp -p "$jf" "$W/ww/$(basename "$jf")"
vp "rollback" --journal "$W/ww/$(basename "$jf")" "$V"
expect_rc 2 "rollback --journal FILE in a world-writable dir: refused"
assert_file_match 'writable' "$ERR" "the message says why (writable)"
unchanged "$V" "$W/v1.snap" "world-writable --journal: volume unchanged"

# --- a journal edited by hand ------------------------------------------------------------
python3 - "$jf" <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
H = struct.unpack_from("<I", b, 12)[0]
# first record: an ENTRY; flip a bit of its "uid before" (payload +16)
assert struct.unpack_from("<I", b, H)[0] == 0x31525056
b[H + 24 + 16] ^= 0x01
open(p, "wb").write(bytes(b))
print(H)
PY
H=$(python3 -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(), 12)[0])' "$jf")
vp "rollback" --journal-dir "$J" "$V"
expect_rc 2 "rollback of a hand-edited journal: refused"
assert_file_match 'corrupt' "$ERR" "the message says corrupt"
assert_file_match "$(basename "$jf")" "$ERR" "the message names the file"
assert_file_match "offset $H|$H" "$ERR" "the message names the offset ($H)"
vp "recover" --journal-dir "$J" "$V"
expect_rc_in "0 2" "recover with a corrupt committed journal (nothing hot)"
unchanged "$V" "$W/v1.snap" "hand-edited journal: volume unchanged"
vp "journal" list --journal-dir "$J" "$V"
assert_file_match 'corrupt' "$OUT" "journal list shows it as corrupt"
cp -p "$W/aside/j1" "$jf" # undo the edit

# --- truncated in the header ---------------------------------------------------------------
cp -p "$jf" "$W/aside/full"
truncate -s 40 "$jf"
vp "rollback" --journal-dir "$J" "$V"
expect_rc 2 "journal truncated inside its header: nothing to roll back / refused (exit 2)"
unchanged "$V" "$W/v1.snap" "header-truncated journal: volume unchanged"
vp "rollback" --journal "$jf" "$V"
expect_rc 2 "rollback --journal of a header-truncated journal: refused"
cp -p "$W/aside/full" "$jf"

# --- cut at its end (the COMMIT mark gone): exactly what a crash leaves ----------------------
size=$(stat -c %s "$jf")
truncate -s $((size - 5)) "$jf"
vp "plan" --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc 4 "journal with its commit mark cut: it is hot now, plan exits 4"
vp_expect 0 "recover rolls the cut journal back" recover --journal-dir "$J" "$V"
snap "$V" "$W/v2.snap"
snap "$V" "$W/v2c.snap" --ctime
snap_eq "$W/v0.snap" "$W/v2.snap" "cut journal: every entry restored exactly (owners, 4755)" --ignore-field ctime

# --- a journal of another volume ----------------------------------------------------------------
V2=$(newvol other)
snap "$V2" "$W/o0.snap" --ctime
J2=$(new_jdir)
vp_expect 0 "apply on the other volume" apply --owner 1001:1001 --journal-dir "$J2" "$V2"
snap "$V2" "$W/o1.snap" --ctime
jo=$(newest_journal "$J2")
vp_expect 0 "apply on the volume again" apply --owner 1001:1001 --journal-dir "$J" "$V"
snap "$V" "$W/v3.snap" --ctime
vp "rollback" --journal "$jo" "$V"
expect_rc 2 "rollback --journal (of another volume) PATH: refused"
assert_file_match 'belongs to' "$ERR" "the message says whose journal it is"
unchanged "$V" "$W/v3.snap" "foreign journal: this volume unchanged"
unchanged "$V2" "$W/o1.snap" "foreign journal: the other volume unchanged"
# renamed to this volume's journal name, newest
cp -p "$jo" "$J/$(printf 'vp-%016x-%016x-%016x.vpj' "$dev" "$ino" 0x7fffffffffffffff)"
vp "rollback" --journal-dir "$J" "$V"
expect_rc 2 "foreign journal renamed to this volume's name: refused (header dev/ino)"
unchanged "$V" "$W/v3.snap" "renamed foreign journal: volume unchanged"
unchanged "$V2" "$W/o1.snap" "renamed foreign journal: other volume unchanged"
rm -f "$J/$(printf 'vp-%016x-%016x-%016x.vpj' "$dev" "$ino" 0x7fffffffffffffff)"

# --- a journal of another run swapped in for the newest ---------------------------------------------
jrun2=$(newest_journal "$J")                  # run 2: 1000 -> 1001 (after the recover)
vp_expect 0 "run 3: apply another owner" apply --owner 1002:1002 --journal-dir "$J" "$V"
jrun3=$(newest_journal "$J")                  # run 3: 1001 -> 1002
snap "$V" "$W/v4.snap" --ctime
cp -p "$jrun3" "$W/aside/run3"
cp -p "$jrun2" "$jrun3"                       # run 2's journal under run 3's name
vp "rollback" --journal-dir "$J" "$V"
expect_rc_in "2 6" "another run's journal under the newest name: refused or all conflicts"
unchanged "$V" "$W/v4.snap" "another run's journal: volume unchanged"
cp -p "$W/aside/run3" "$jrun3"

# --- an older copy put back after rollback (replay) ---------------------------------------------------
cp -p "$jrun3" "$W/aside/run3-committed"
vp_expect 0 "rollback run 3" rollback --journal-dir "$J" "$V"
snap "$V" "$W/v5.snap" --ctime
cp -p "$W/aside/run3-committed" "$jrun3"    # the committed copy is back
vp "rollback" --journal-dir "$J" "$V"
expect_rc_in "0 2 6" "replayed committed copy after rollback"
unchanged "$V" "$W/v5.snap" "replayed journal: volume unchanged (everything already as before)"
vp_expect 0 "apply run 4 (1001 -> 1003)" apply --owner 1003:1003 --journal-dir "$J" "$V"
snap "$V" "$W/v6.snap" --ctime
cp -p "$W/aside/run3-committed" "$jrun3"
touch -d '+1 hour' "$jrun3"
vp "rollback" --journal "$jrun3" "$V"
expect_rc_in "2 6" "old committed journal replayed over a newer run: refused or conflicts"
unchanged "$V" "$W/v6.snap" "old journal replayed over a newer run: volume unchanged"
decoy_same "$E" "$W/decoy0.snap" "decoy untouched by all of it"

finish
