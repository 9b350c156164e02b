#!/usr/bin/env bash
# What a failed apply says about the tree when its automatic rollback cannot
# finish. The apply is paused mid-way without any timing: its --list output
# goes into a FIFO that the test stops reading (the walk blocks on the full
# pipe), the test changes the world, then reads on.
#
# 1. The volume is remounted read-only mid-apply: the next chown fails, and
#    the rollback cannot restore anything either. The one line must not say
#    "nothing was changed" (thousands of entries were): it says how many
#    stay changed and to run recover; the summary says the journal is
#    rolling-back; recover, once the volume is writable, restores the
#    pre-apply snapshot.
# 2. An entry volperm already changed is changed again by someone else, and
#    a later entry fails (immutable): the rollback leaves the first alone as
#    a conflict (exit 6) and marks the journal rolled back: the summary says
#    "rolled back", not "run volperm recover", and recover has nothing to
#    do.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/crashlib.sh"
setup
need_cmd mount umount mkfifo chattr truncate mkfs.ext4
snapd_start
crash_fs 256
export VOLPERM_JOBS=1 # one worker: the pause holds every change

# paused_apply V J: start `apply --list` on V writing into a FIFO, read 64
# KiB of it (the walk is then blocked on the pipe, mid-apply); the caller
# acts, then calls resume_apply.
paused_apply() {
	rm -f "$W/fifo"
	mkfifo "$W/fifo" || die "mkfifo"
	"$VP" apply --list -o 1001:1001 --journal-dir "$2" "$1" >"$W/fifo" 2>"$W/ab.err" &
	APID=$!
	exec 7<"$W/fifo"
	head -c 65536 <&7 >"$W/ab.list"
}
resume_apply() {
	cat <&7 >>"$W/ab.list"
	exec 7<&-
	wait "$APID"
	RC=$? ERR=$W/ab.err OUT=$W/ab.list
}

# ---- 1. read-only mid-apply ----
truncate -s 256M "$W/v1.img"
mkfs.ext4 -q -F "$W/v1.img" || die "mkfs.ext4"
M=$W/v1
mkdir "$M"
mount -o loop "$W/v1.img" "$M" || skip "cannot loop-mount an ext4 image"
on_exit "umount '$M'"
mktree "$M/vol" 20000 --seed 3 --setid 5
fsnap "$M/vol" "$W/pre1.snap"
J=$(fs_jdir)
paused_apply "$M/vol" "$J"
mount -o remount,ro "$M" || die "remount ro"
resume_apply
expect_rc 6 "[ro] apply whose volume went read-only: exit 6 (the rollback could not finish)"
changed=$(grep -c '^chown ' "$OUT") # --list: one line per change made
say "# [ro] $changed entries were changed before the volume went read-only ($(find "$M/vol" -uid 1001 | wc -l) owned by 1001)"
assert_true "[ro] entries had been changed ($changed)" test "$changed" -gt 0
assert_file_nomatch "nothing was changed" "$ERR" "[ro] the message does not say nothing was changed"
assert_file_match "$changed entries changed by this apply are still changed: run volperm recover" "$ERR" \
	"[ro] ... it says how many stay changed ($changed) and to run recover"
assert_eq "$(grep -c '^volperm: ' "$ERR")" 1 "[ro] one line on stderr"
assert_file_match "rolling-back: run volperm recover" "$OUT" "[ro] the summary: the journal is rolling-back"
mount -o remount,rw "$M" || die "remount rw"
vp_expect 0 "[ro] recover once the volume is writable" recover -q --journal-dir "$J" "$M/vol"
fcheck "$M/vol" "$W/pre1.snap" "[ro] recover == pre-apply snapshot"

# ---- 2. a conflict in the automatic rollback ----
V=$FSDIR/vol2
mktree "$V" 20000 --seed 4
fsnap "$V" "$W/pre2.snap"
J=$(fs_jdir)
paused_apply "$V" "$J"
done1=$(awk '$1 == "chown" { print $NF; exit }' "$W/ab.list")
[ -n "$done1" ] && [ "$(stat -c %u "$done1")" = 1001 ] || die "no changed entry in the first 64 KiB of --list (test setup)"
chown -h 4242:4242 "$done1" # someone else's change now
todo=$(find "$V" -type f -uid 0 | tail -n 1)
[ -n "$todo" ] || die "no unchanged file left (test setup)"
chattr +i "$todo" || skip "chattr +i is not supported on $(stat -f -c %T "$V")"
resume_apply
chattr -i "$todo"
expect_rc 6 "[conflict] apply that failed and met a conflict in its rollback: exit 6"
assert_file_match "left alone" "$ERR" "[conflict] the conflict is reported"
assert_eq "$(journal_state "$J")" rolled-back "[conflict] the journal is rolled back (conflicts are final)"
assert_file_nomatch "run volperm recover" "$OUT" "[conflict] the summary does not send the user to recover"
assert_file_match "journal: .*\\(rolled back\\)" "$OUT" "[conflict] the summary says the journal is rolled back"
vp recover --journal-dir "$J" "$V"
expect_rc 0 "[conflict] recover: nothing to do"
assert_file_match "nothing to recover" "$OUT" "[conflict] recover says nothing to recover"
assert_eq "$(stat -c %u:%g "$done1")" 4242:4242 "[conflict] the other change is left alone"
finish
