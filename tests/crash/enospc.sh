#!/usr/bin/env bash
# Resource faults: a full journal file system, a read-only journal dir, a
# read-only volume.
#
# 1. The journal dir is a tiny tmpfs that fills up mid-apply (ENOSPC after a
#    few batches were journaled and applied): the apply stops, rolls back
#    what it changed, exits 3; the tree equals the pre-apply snapshot; the
#    journal ends rolled-back (no hot journal left behind). With room again,
#    apply then rollback work.
# 2. The journal dir's file system is already full: the journal cannot be
#    created; exit 2, nothing changed.
# 3. The journal dir is read-only (ro tmpfs, and a ro bind mount of a real
#    dir): refused before any change, exit 2, nothing changed.
# 4. The volume is read-only (ro bind mount, ro tmpfs): one clear sentence,
#    exit 3, nothing changed, no journal written.
# 5. Rollback onto a volume that went read-only: it fails with one sentence
#    naming the read-only file system (exit 2, nothing changed; or 6), the
#    journal stays; once the volume is writable a re-run restores the
#    pre-apply tree.
#
# VOLPERM_ENOSPC_ENTRIES: the tree's size (default 5000). The journal file
# system sizes of 1. (400k, and CRASH_ENOSPC_SIZES's default 120k to 372k)
# were chosen for 5000 entries and scale with it, so that the journal of a
# complete apply never fits (checked first: the test refuses a size where it
# would) and the smallest still holds a few hundred entries' records.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/crashlib.sh"
setup
need_cmd cp mount umount setfacl setcap dd
snapd_start

ENTRIES=${VOLPERM_ENOSPC_ENTRIES:-5000}
case $ENTRIES in '' | *[!0-9]*) die "VOLPERM_ENOSPC_ENTRIES=$ENTRIES: expected a number of entries" ;; esac
# scaled_kb KB: a journal fs size chosen for 5000 entries, for this tree
scaled_kb() { echo $(($1 * ENTRIES / 5000)); }

P=$W/pristine
mktree "$P" "$ENTRIES" --seed 5 --acl-every 30 --default-acl-every 10 --setid 5 --caps 2
fsnap "$P" "$W/pre.snap"
V=$W/v
fresh_copy "$P" "$V"
JC=$(new_jdir)
vp_expect 0 "clean apply" apply -q -o 1001:1001 --journal-dir "$JC" "$V"
fsnap "$V" "$W/post.snap"
fresh_copy "$P" "$V"
# The premise of 1.: the journal fills its file system before the apply is
# done. A complete apply's journal is the measure: it must not fit in the
# largest size (tmpfs counts whole pages: with one to spare).
JBYTES=$(cat "$JC"/*.vpj | wc -c)
sizes=${CRASH_ENOSPC_SIZES:-$(for kb in 120 156 192 228 264 300 336 372; do scaled_kb $kb; done)}
FILL_KB=$(scaled_kb 400)
for kb in $FILL_KB $sizes; do
	[ $((kb * 1024 + 4096)) -lt "$JBYTES" ] ||
		die "PREMISE FAILED: VOLPERM_ENOSPC_ENTRIES=$ENTRIES is too small: a complete apply's journal ($JBYTES bytes) would fit in a ${kb}k journal file system"
done
say "# $ENTRIES entries, a complete apply's journal: $JBYTES bytes; journal file systems of ${FILL_KB}k and ${sizes// /k }k"

# ---- 1. ENOSPC mid-apply ----
JT=$W/jtmpfs
mkdir "$JT"
mount -t tmpfs -o "size=${FILL_KB}k,mode=0700" tmpfs "$JT" || skip "cannot mount tmpfs"
# A batch holds one pinned fd per entry, so the open-file limit sets its
# size: 1024 gives batches of about 500 entries (shared out between the
# workers), several of which fit in 400k (on 5000 entries; FILL_KB) before
# the journal fills. With the limit CI machines have, one
# batch of 4096 would fill it before any change.
(ulimit -n 1024 && "$VP" apply -o 1001:1001 --journal-dir "$JT" "$V") >"$W/s1.out" 2>"$W/s1.err"
RC=$? OUT=$W/s1.out ERR=$W/s1.err
expect_rc 3 "apply with a journal dir that fills up: rolled back"
assert_file_match "no space left on device" "$ERR" "the error names ENOSPC"
restored=$(awk '/^rolled back:/ { print $3 }' "$OUT")
say "# $(grep "^rolled back:" "$OUT")"
assert_true "the ENOSPC came mid-apply: entries had been changed and were restored (${restored:-0})" \
	test "${restored:-0}" -gt 0
fcheck "$V" "$W/pre.snap" "after ENOSPC mid-apply: tree == pre-apply snapshot"
assert_eq "$(journal_state "$JT")" rolled-back "the journal ends rolled-back"
vp_expect 1 "check after the failed apply: changes needed, no hot journal" check -o 1001:1001 --journal-dir "$JT" "$V"
vp_expect 0 "recover: nothing to recover" recover --journal-dir "$JT" "$V"
mount -o remount,size=16m "$JT" || die "remount"
vp_expect 0 "apply again with room in the journal dir" apply -q -o 1001:1001 --journal-dir "$JT" "$V"
fcheck "$V" "$W/post.snap" "... == clean apply snapshot"
vp_expect 0 "rollback" rollback -q --journal-dir "$JT" "$V"
fcheck "$V" "$W/pre.snap" "... rollback == pre-apply snapshot"
umount "$JT"

# the same with 4 workers, several times: which worker meets the full disk
# first (its own batch's fdatasync, or adding a record to the shared writer
# after another worker's batch failed) depends on scheduling, and every one
# of those paths must name the real error (it once said "out of memory" in
# about half of these runs)
for i in 1 2 3 4 5 6; do
	mount -t tmpfs -o "size=${FILL_KB}k,mode=0700" tmpfs "$JT" || die "mount tmpfs"
	(ulimit -n 1024 && "$VP" apply -o 1001:1001 --jobs 4 --journal-dir "$JT" "$V") >"$W/j4.out" 2>"$W/j4.err"
	RC=$? OUT=$W/j4.out ERR=$W/j4.err
	expect_rc 3 "[--jobs 4, run $i] apply with a journal dir that fills up: rolled back"
	say "# [--jobs 4, run $i] $(grep "^rolled back:" "$OUT")"
	assert_file_match "no space left on device" "$ERR" "[--jobs 4, run $i] the error names ENOSPC"
	assert_file_nomatch "out of memory" "$ERR" "[--jobs 4, run $i] ... and not 'out of memory'"
	fcheck "$V" "$W/pre.snap" "[--jobs 4, run $i] tree == pre-apply snapshot"
	umount "$JT"
done

# the same with batches of 4 entries (fd limit 40), for several sizes of
# the journal file system: the failure lands deep inside the run, after
# hundreds of small batches, at a different offset within a page each time
# (the rollback's marks must still find room: see invariant 4)
n_sizes=0 bad_sizes=()
for kb in $sizes; do
	n_sizes=$((n_sizes + 1))
	mount -t tmpfs -o size=${kb}k,mode=0700 tmpfs "$JT" || die "mount tmpfs"
	f0=$FAILS
	(ulimit -n 40 && "$VP" apply -o 1001:1001 --journal-dir "$JT" "$V") >"$W/b4.out" 2>"$W/b4.err"
	RC=$? OUT=$W/b4.out ERR=$W/b4.err
	expect_rc 3 "[${kb}k] apply in batches of 4 with a journal dir that fills up: rolled back"
	restored=$(awk '/^rolled back:/ { print $3 }' "$OUT")
	say "# [${kb}k] exit $RC: $(grep "^rolled back:" "$OUT") / $(tail -n 1 "$ERR")"
	assert_true "[${kb}k] entries had been changed and were restored (${restored:-0})" test "${restored:-0}" -gt 100
	fcheck "$V" "$W/pre.snap" "[${kb}k] after ENOSPC mid-apply (batches of 4): tree == pre-apply snapshot"
	assert_eq "$(journal_state "$JT")" rolled-back "[${kb}k] the journal ends rolled-back (its marks found room)"
	vp_expect 1 "[${kb}k] check after the failed apply: changes needed, no hot journal" check -o 1001:1001 --journal-dir "$JT" "$V"
	umount "$JT"
	if [ $FAILS -gt $f0 ]; then
		bad_sizes+=("${kb}k")
		fresh_copy "$P" "$V" # the next size starts from the pristine tree
	fi
done
say "# ENOSPC mid-apply in batches of 4: $n_sizes journal fs sizes, ${#bad_sizes[@]} with a failure (${bad_sizes[*]:-none})"

# ---- 2. journal file system full from the start ----
mount -t tmpfs -o size=8k,mode=0700 tmpfs "$JT" || die "mount tmpfs"
dd if=/dev/zero of="$JT/filler" bs=4k count=4 >/dev/null 2>&1 # fills it (dd fails at the end)
vp apply -o 1001:1001 --journal-dir "$JT" "$V"
expect_rc 2 "apply with a full journal file system: refused"
assert_file_match "no space left on device" "$ERR" "the error names ENOSPC"
assert_file_match "nothing was changed" "$ERR" "the error says nothing was changed"
fcheck "$V" "$W/pre.snap" "full journal fs: tree unchanged"
umount "$JT"

# ---- 3. read-only journal dir ----
mount -t tmpfs -o ro,mode=0700 tmpfs "$JT" || die "mount ro tmpfs"
vp apply -o 1001:1001 --journal-dir "$JT" "$V"
expect_rc 2 "apply with a read-only journal dir (ro tmpfs): refused"
assert_file_match "read-only file system" "$ERR" "the error says read-only file system"
fcheck "$V" "$W/pre.snap" "ro journal dir (tmpfs): tree unchanged"
umount "$JT"
JR=$(new_jdir)
mount --bind "$JR" "$JT" && mount -o remount,bind,ro "$JT" || die "ro bind mount"
vp apply -o 1001:1001 --journal-dir "$JT" "$V"
expect_rc 2 "apply with a read-only journal dir (ro bind mount of a real dir): refused"
assert_file_match "read-only file system" "$ERR" "the error says read-only file system"
fcheck "$V" "$W/pre.snap" "ro journal dir (bind): tree unchanged"
assert_eq "$(count_journals "$JR")" 0 "no journal was written"
umount "$JT"

# ---- 4. read-only volume ----
VR=$W/vro
mkdir "$VR"
mount --bind "$V" "$VR" && mount -o remount,bind,ro "$VR" || die "ro bind mount"
J=$(new_jdir)
vp apply -o 1001:1001 --journal-dir "$J" "$VR"
expect_rc 3 "apply on a read-only volume (ro bind mount)"
assert_file_match "read-only file system" "$ERR" "one clear sentence: read-only file system"
assert_eq "$(grep -c . "$ERR")" 1 "exactly one line on stderr"
assert_eq "$(count_journals "$J")" 0 "no journal was written"
fcheck "$V" "$W/pre.snap" "ro volume: tree unchanged"
umount "$VR"
TV=$W/tmpvol
mkdir "$TV"
mount -t tmpfs -o size=16m tmpfs "$TV" || die "mount tmpfs"
cp -a "$P/special" "$TV/" || die "cp -a"
fsnap "$TV" "$W/tv.snap"
mount -o remount,ro "$TV" || die "remount ro"
vp apply -o 1001:1001 --journal-dir "$J" "$TV"
expect_rc 3 "apply on a read-only volume (ro tmpfs)"
assert_file_match "read-only file system" "$ERR" "one clear sentence: read-only file system"
fcheck "$TV" "$W/tv.snap" "ro tmpfs volume: unchanged"
umount "$TV"

# ---- 5. rollback onto a volume that went read-only ----
J=$(new_jdir)
vp_expect 0 "apply" apply -q -o 1001:1001 --journal-dir "$J" "$V"
mount --bind "$V" "$VR" && mount -o remount,bind,ro "$VR" || die "ro bind mount"
vp rollback -q --journal-dir "$J" "$VR"
say "# rollback onto the read-only volume: exit $RC, $(wc -l <"$ERR") line(s) on stderr"
assert_true "rollback onto a read-only volume fails (exit 2: refused, or 6: could not restore) ($RC)" \
	test "$RC" = 2 -o "$RC" = 6
assert_file_match "read-only file system" "$ERR" "the error says read-only file system"
assert_eq "$(grep -c . "$ERR")" 1 "one sentence, not an error per entry"
umount "$VR"
fcheck "$V" "$W/post.snap" "nothing was restored (the volume was read-only)"
state=$(journal_state "$J")
assert_true "the journal is still there to roll back ($state)" test "$state" = committed -o "$state" = rolling-back
vp_expect 0 "rollback again, volume writable" rollback -q --journal-dir "$J" "$V"
fcheck "$V" "$W/pre.snap" "... == pre-apply snapshot"
assert_eq "$(journal_state "$J")" rolled-back "the journal ends rolled-back"

finish
