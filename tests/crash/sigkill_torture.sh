#!/usr/bin/env bash
# Real SIGKILLs on the release build, at random moments.
#
# A generated tree (CRASH_TREE_SIZE entries, default 20000: ACLs, default
# ACLs, setuid/setgid, capabilities, hard links, symlinks). A clean apply is
# timed (T) and gives the after-snapshot. Then, CRASH_KILLS times (default
# 100), `volperm apply` is started and SIGKILLed after a random delay in
# (0, 1.1 T] (the bound shrinks by 10% whenever an apply finished before its
# kill, and grows by 2% after a kill mid-apply); afterwards:
#   - killed mid-apply (hot journal): plan exits 4; `volperm recover`
#     (every 10th time `recover --forward`, checked against the clean
#     apply, then `rollback`) and the tree must equal the pre-apply
#     snapshot, 0 differences;
#   - every CRASH_MIDSTATE_EVERY-th mid-apply kill (default 10) is also
#     checked right after the kill: every entry in its before or its after
#     state, every changed entry journaled;
#   - killed before the journal existed, or before its header was written
#     (the file created, empty): nothing may have changed, and plan does
#     not see a hot journal;
#   - finished (or committed) before the kill: rollback, then pre-apply.
# Kills count only when they land mid-apply; the loop stops after
# CRASH_KILLS of those (or 3x as many attempts).
#
# Then kills during the undo paths, CRASH_UNDO_KILLS times each (default 6):
#   - `rollback` of a committed journal SIGKILLed at a random moment, re-run:
#     pre-apply snapshot;
#   - `recover` of a hot journal SIGKILLed, re-run: pre-apply snapshot
#     (every other time the re-run is killed too, a double crash);
#   - `recover --forward` SIGKILLed, re-run: clean-apply snapshot, then
#     rollback: pre-apply snapshot.
#
# Two copies of the tree alternate, so that one is snapshotted while the
# other is being killed. CRASH_SEED seeds the random delays (default: the
# time); the seed is printed.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/crashlib.sh"
setup
need_cmd cp setfacl getfacl setcap
snapd_start

SIZE=${CRASH_TREE_SIZE:-20000}
KILLS=${CRASH_KILLS:-100}
UNDO=${CRASH_UNDO_KILLS:-6}
MIDEVERY=${CRASH_MIDSTATE_EVERY:-10}
SEED=${CRASH_SEED:-$(date +%s)}
RANDOM=$SEED
OWNER=1001:1001
say "# tree $SIZE entries, $KILLS mid-apply kills wanted, $UNDO kills per undo path, seed $SEED"
crash_fs $((256 + SIZE * 24 / 1024)) # room and inodes for three copies of the tree

t0=$(date +%s.%N)
P=$FSDIR/pristine
mktree "$P" "$SIZE" --seed 11 --acl-every 40 --default-acl-every 20 --setid 10 --caps 4 \
	--hardlink-every 300 --symlink-every 150
say "# generated in $(elapsed "$t0") s"
fsnap "$P" "$W/pre.snap"
A=$FSDIR/a B=$FSDIR/b
fresh_copy "$P" "$A"
fresh_copy "$P" "$B"
rm -rf "$P" # the copies are checked against pre.snap before each use

# Clean apply on B: the after-snapshot and the duration T.
J=$FSDIR/j
fresh_jdir "$J"
t1=$(date +%s.%N)
vp_expect 0 "clean apply of $SIZE entries" apply -q -o $OWNER --journal-dir "$J" "$B"
T=$(elapsed "$t1")
fsnap "$B" "$W/post.snap"
snap_ne "$W/pre.snap" "$W/post.snap" "the apply changes the tree"
t1=$(date +%s.%N)
vp_expect 0 "clean rollback" rollback -q --journal-dir "$J" "$B"
TR=$(elapsed "$t1")
fcheck "$B" "$W/pre.snap" "clean rollback == pre-apply snapshot"
fcheck "$A" "$W/pre.snap" "copy A == pre-apply snapshot"
say "# apply takes ${T}s, rollback ${TR}s"
MAXD=$(awk -v t="$T" 'BEGIN { printf "%.3f", t * 1.1 }')

# Trees alternate A, B; a tree's pending snapshot check is collected right
# before the tree is used again.
X=
take_tree() { # X = the next tree, its pending check collected
	if [ "$X" = "$A" ]; then X=$B; else X=$A; fi
	snapd_drain "$X"
}
later_check() { fcheck_async "$X" "$W/pre.snap" "$1"; } # DESC
collect_all() { snapd_drain; }

# bg_kill DELAY CMD...: run volperm CMD in the background, SIGKILL it after
# DELAY seconds; RC = its exit status (137 when the kill landed).
bg_kill() {
	local d=$1
	shift
	"$VP" "$@" >"$W/bg.out" 2>"$W/bg.err" &
	local pid=$!
	sleep "$d"
	kill -KILL "$pid" 2>/dev/null
	{ wait "$pid"; } 2>/dev/null
	RC=$?
}

mid=0 attempts=0 early=0 noheader=0 finished=0 committed=0 forward=0 midchecked=0
t2=$(date +%s.%N)
while [ $mid -lt "$KILLS" ] && [ $attempts -lt $((KILLS * 3)) ]; do
	attempts=$((attempts + 1))
	take_tree
	fresh_jdir "$J"
	d=$(rand_delay "$MAXD")
	bg_kill "$d" apply -q -o $OWNER --journal-dir "$J" "$X"
	what="kill $attempts (apply, ${d}s)"
	state=$(journal_state "$J")
	if [ $RC -eq 0 ] || [ "$state" = committed ]; then
		[ $RC -eq 0 ] && finished=$((finished + 1)) || committed=$((committed + 1))
		# the apply runs faster than measured (warm caches): aim earlier
		MAXD=$(awk -v m="$MAXD" 'BEGIN { printf "%.3f", m * 0.9 }')
		[ $RC -eq 0 ] || [ $RC -eq 137 ] || fail "$what: apply exited $RC"
		vp_expect 0 "$what: apply was complete (exit $RC, $state); rollback" rollback -q --journal-dir "$J" "$X"
		later_check "$what: rollback == pre-apply snapshot"
		continue
	fi
	if [ $RC -ne 137 ]; then
		fail "$what: apply exited $RC"
		show_run
		continue
	fi
	if [ "$state" = none ]; then
		early=$((early + 1))
		later_check "$what: killed before the journal existed: tree unchanged"
		continue
	fi
	if [ -z "$state" ]; then
		# The file is there but has no header yet: killed between its
		# O_CREAT and the header's write (src/journal.c), a window the
		# round trips of a slow file system make wide enough to hit. No
		# change comes before the header and the directory are synced:
		# the tree is unchanged, and plan does not take the file for a
		# hot journal.
		early=$((early + 1)) noheader=$((noheader + 1))
		vp_expect 0 "$what: killed before the journal header was written: plan (no hot journal)" \
			plan -q -o $OWNER --journal-dir "$J" "$X"
		later_check "$what: killed before the journal header was written: tree unchanged"
		continue
	fi
	mid=$((mid + 1))
	MAXD=$(awk -v m="$MAXD" -v t="$T" 'BEGIN { m *= 1.02; if (m > 1.5 * t) m = 1.5 * t; printf "%.3f", m }')
	assert_eq "$state" active "$what: journal is active (hot)"
	if [ $((mid % MIDEVERY)) -eq 0 ]; then
		midchecked=$((midchecked + 1))
		fmidstate "$X" "$W/pre.snap" "$W/post.snap" "$(newest_journal "$J")" \
			"$what: every entry before or after, every change journaled"
	fi
	vp_expect 4 "$what: plan refuses (hot journal)" plan -o $OWNER --journal-dir "$J" "$X"
	if [ $((mid % 10)) -eq 5 ]; then
		forward=$((forward + 1))
		vp_expect 0 "$what: recover --forward" recover --forward -q --journal-dir "$J" "$X"
		fcheck "$X" "$W/post.snap" "$what: recover --forward == clean apply snapshot"
		vp_expect 0 "$what: rollback after recover --forward" rollback -q --journal-dir "$J" "$X"
		later_check "$what: rollback == pre-apply snapshot"
	else
		vp_expect 0 "$what: recover" recover -q --journal-dir "$J" "$X"
		later_check "$what: recover == pre-apply snapshot"
	fi
done
collect_all
say "# apply kills: $attempts attempts in $(elapsed "$t2") s: $mid mid-apply (recovered; $forward of them forward), $early before the journal ($noheader of them with the file created, no header yet), $finished finished and $committed committed before the kill; $midchecked mid-crash states checked"
assert_true "at least $KILLS kills landed mid-apply ($mid)" test "$mid" -ge "$KILLS"

# ---- kills during rollback and recover ----
# hot_tree: apply on $X killed mid-way (retries until a hot journal exists).
hot_tree() {
	local i d
	for i in 1 2 3 4 5 6 7 8 9 10; do
		fresh_jdir "$J"
		d=$(awk -v t="$MAXD" -v r="$RANDOM" 'BEGIN { printf "%.3f", t * (0.1 + 0.6 * r / 32768) }')
		bg_kill "$d" apply -q -o $OWNER --journal-dir "$J" "$X"
		[ $RC -eq 137 ] && [ "$(journal_state "$J")" = active ] && return 0
		"$VP" rollback -q --journal-dir "$J" "$X" >/dev/null 2>&1
		MAXD=$(awk -v m="$MAXD" 'BEGIN { printf "%.3f", m * 0.8 }')
	done
	die "could not kill an apply mid-way in 10 attempts"
}

rb_mid=0 rec_mid=0 fwd_mid=0 double=0
t3=$(date +%s.%N)
for ((i = 1; i <= UNDO; i++)); do
	# rollback of a committed journal, killed
	take_tree
	fresh_jdir "$J"
	vp_expect 0 "undo $i: apply" apply -q -o $OWNER --journal-dir "$J" "$X"
	d=$(rand_delay "$TR")
	bg_kill "$d" rollback -q --journal-dir "$J" "$X"
	state=$(journal_state "$J")
	what="undo $i: rollback killed at ${d}s (exit $RC, journal $state)"
	case $state in
	rolling-back)
		rb_mid=$((rb_mid + 1))
		vp_expect 4 "$what: plan refuses (hot journal)" plan -o $OWNER --journal-dir "$J" "$X"
		vp_expect 0 "$what: rollback re-run" rollback -q --journal-dir "$J" "$X"
		;;
	committed) # killed before its first write: run it again
		vp_expect 0 "$what: rollback re-run" rollback -q --journal-dir "$J" "$X"
		;;
	esac
	assert_eq "$(journal_state "$J")" rolled-back "$what: journal ends rolled-back"
	later_check "$what: tree == pre-apply snapshot"

	# recover (roll back) of a hot journal, killed; every other time twice
	take_tree
	hot_tree
	what="undo $i: recover killed"
	bg_kill "$(rand_delay "$TR")" recover -q --journal-dir "$J" "$X"
	if [ $RC -eq 137 ] && [ "$(journal_state "$J")" = rolling-back ]; then
		rec_mid=$((rec_mid + 1))
		if [ $((i % 2)) -eq 0 ]; then
			bg_kill "$(rand_delay "$TR")" recover -q --journal-dir "$J" "$X"
			[ $RC -eq 137 ] && [ "$(journal_state "$J")" = rolling-back ] && double=$((double + 1))
		fi
	fi
	vp_expect 0 "$what: recover re-run" recover -q --journal-dir "$J" "$X"
	assert_eq "$(journal_state "$J")" rolled-back "$what: journal ends rolled-back"
	later_check "$what: re-run == pre-apply snapshot"

	# recover --forward, killed
	take_tree
	hot_tree
	what="undo $i: recover --forward killed"
	bg_kill "$(rand_delay "$T")" recover --forward -q --journal-dir "$J" "$X"
	[ $RC -eq 137 ] && [ "$(journal_state "$J")" = active ] && fwd_mid=$((fwd_mid + 1))
	vp_expect 0 "$what: recover --forward re-run" recover --forward -q --journal-dir "$J" "$X"
	assert_eq "$(journal_state "$J")" committed "$what: journal ends committed"
	fcheck "$X" "$W/post.snap" "$what: re-run == clean apply snapshot"
	vp_expect 0 "$what: rollback" rollback -q --journal-dir "$J" "$X"
	later_check "$what: rollback == pre-apply snapshot"
done
collect_all
say "# undo kills in $(elapsed "$t3") s: rollback killed mid-way $rb_mid/$UNDO, recover $rec_mid/$UNDO ($double double crashes), recover --forward $fwd_mid/$UNDO"
say "# sigkill_torture: $mid mid-apply kills + $((rb_mid + rec_mid + double + fwd_mid)) mid-undo kills, total $(elapsed "$t0") s"
finish
