#!/usr/bin/env bash
# While an apply holds the volume's lock, a second apply on the same volume
# exits 4 at once (it does not wait, it changes nothing); an apply on
# another volume with the same journal dir is not blocked.
. "$(dirname "$0")/lib.sh"
setup

J=$(new_jdir)
V=$W/vol
mktree "$V" "${VOLPERM_LOCK_ENTRIES:-50000}" --seed 81 --hardlink-every 0
O=$W/other
mktree "$O" 50 --seed 82

tested=0
for attempt in 1 2 3 4; do
	uid=$((1000 + attempt))
	"$VP" apply --owner "$uid:$uid" --journal-dir "$J" --quiet "$V" >"$W/bg.out" 2>"$W/bg.err" &
	pid=$!
	# Wait until the first apply has started using the journal dir.
	for _ in $(seq 1 500); do
		[ -n "$(find "$J" -maxdepth 1 \( -name '*.lock' -o -name '*.vpj' \) -print -quit)" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	sleep 0.05
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		say "# note: attempt $attempt: the first apply finished (exit $?) before the second could start"
		continue
	fi
	vpt 60 apply --owner 1099:1099 --journal-dir "$J" "$V"
	rc2=$RC
	err2=$ERR
	out2=$OUT
	vpt 60 rollback --journal-dir "$J" "$V"
	rc3=$RC
	vpt 60 apply --owner 1001:1001 --journal-dir "$J" "$O"
	rc4=$RC
	alive=0
	kill -0 "$pid" 2>/dev/null && alive=1
	wait "$pid"
	rc1=$?
	if [ $alive = 0 ]; then
		say "# note: attempt $attempt: the first apply finished while the others ran; inconclusive, again"
		[ $rc2 = 0 ] && vp rollback --journal-dir "$J" "$V"
		continue
	fi
	tested=1
	RC=$rc2 ERR=$err2 OUT=$out2
	expect_rc 4 "second apply while the first holds the lock"
	assert_nonempty "$err2" "second apply says why on stderr"
	RC=$rc3
	expect_rc 4 "rollback while an apply is running"
	RC=$rc4
	expect_rc 0 "apply on another volume (same journal dir) is not blocked"
	RC=$rc1
	expect_rc 0 "the first apply finished normally"
	vp_expect 0 "the first apply's result is complete" check --owner "$uid:$uid" --journal-dir "$J" "$V"
	break
done
[ $tested = 1 ] || fail "could not run a second apply while the first was running (4 attempts on ${VOLPERM_LOCK_ENTRIES:-50000} entries)"

finish
