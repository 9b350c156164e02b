#!/usr/bin/env bash
# Crash recovery with real SIGKILLs: kill `volperm apply` on a ~100k-entry
# tree at several points. Afterwards the journal is hot: apply, plan and
# check exit 4 and change nothing; `recover PATH` gives back exactly the
# pre-apply tree, `recover --forward PATH` exactly what a clean apply gives
# (oracle: a copy chowned with chown -R -h).
. "$(dirname "$0")/lib.sh"
setup
need_cmd cp chown setfacl setcap

ENTRIES=${VOLPERM_CRASH_ENTRIES:-100000}
GEN=(--seed 41 --acl-every 50 --setid 5 --caps 2 --hardlink-every 500)
V=$W/vol
say "# generating $ENTRIES entries (twice: the volume, and the oracle for chown -R -h)"
mktree "$V" "$ENTRIES" "${GEN[@]}"
snap "$V" "$W/pristine.snap"
mktree "$W/oracle" "$ENTRIES" "${GEN[@]}"
snap "$W/oracle" "$W/oracle0.snap"
python3 "$TOOLS/snapshot.py" --diff "$W/pristine.snap" "$W/oracle0.snap" >/dev/null ||
	die "mktree.py is not deterministic (test setup)"
chown -R -h 1001:1001 "$W/oracle" || die "chown -R -h"
snap "$W/oracle" "$W/oracle.snap"
rm -rf "$W/oracle"
# The same volume is used for every attempt: each one ends by bringing it
# back to its pristine state (recover, or rollback), and checks that it did.
pristine=1
back_to_pristine() { # back_to_pristine DESC
	snap "$V" "$W/check.snap"
	if python3 "$TOOLS/snapshot.py" --diff "$W/pristine.snap" "$W/check.snap" >"$W/check.diff"; then
		pass "$1"
	else
		fail "$1: snapshots differ:"
		sed 's/^/    /' "$W/check.diff"
		pristine=0
	fi
}

# every entry of snapshot $1 is either its pristine or its oracle state
mixed_ok() {
	python3 - "$W/pristine.snap" "$W/oracle.snap" "$1" <<'PY'
import sys
def load(p):
    # first 8 columns: path .. caps (a ninth, ctime, is left out)
    return {l.split("\t", 1)[0]: "\t".join(l.rstrip("\n").split("\t")[:8]) for l in open(p)}
P, O, S = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
bad = [k for k in set(P) | set(S) if S.get(k) not in (P.get(k), O.get(k))]
for k in sorted(bad)[:10]:
    print("    %s: now %r, before %r, after %r" % (k, S.get(k), P.get(k), O.get(k)))
print("    %d entries changed, %d in neither state" % (sum(1 for k in S if S[k] != P.get(k)), len(bad)))
sys.exit(1 if bad else 0)
PY
}

hot_back=0 hot_fwd=0 attempts=0 finished=0 early=0
delay=0.05
want_each=${VOLPERM_CRASH_ROUNDS:-2}
while [ $hot_back -lt "$want_each" ] || [ $hot_fwd -lt "$want_each" ]; do
	attempts=$((attempts + 1))
	[ $pristine = 1 ] || die "the volume is not back in its pristine state; cannot go on"
	if [ $attempts -gt 14 ]; then
		fail "could not SIGKILL apply mid-run often enough after $((attempts - 1)) attempts ($finished finished first, $early killed before any journal); hot recoveries: back $hot_back, forward $hot_fwd"
		break
	fi
	J=$(new_jdir)
	say "# attempt $attempts: SIGKILL after ${delay}s"
	"$VP" apply --owner 1001:1001 --journal-dir "$J" --quiet "$V" >"$W/bg.out" 2>"$W/bg.err" &
	pid=$!
	sleep "$delay"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	if [ $rc -ne 137 ]; then
		finished=$((finished + 1))
		say "# note: apply finished (exit $rc) before the kill at ${delay}s; trying a shorter delay"
		[ $rc -eq 0 ] || { fail "background apply exited $rc"; cat "$W/bg.err"; }
		vp_expect 0 "rollback of the finished apply" rollback --journal-dir "$J" "$V"
		back_to_pristine "rollback of the finished apply restored the volume"
		delay=$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 2 }')
		continue
	fi
	if [ "$(count_journals "$J")" -eq 0 ]; then
		early=$((early + 1))
		back_to_pristine "killed before any journal existed: nothing changed"
		say "# note: killed before the first journal write; trying a longer delay"
		delay=$(awk -v d="$delay" 'BEGIN { printf "%.3f", d * 1.7 + 0.02 }')
		continue
	fi
	snap "$V" "$W/killed.snap" --ctime
	if mixed_ok "$W/killed.snap"; then
		pass "after SIGKILL every entry is either before or after (write-ahead, no half states)"
	else
		fail "after SIGKILL some entries are in neither the before nor the after state"
	fi
	vp plan --owner 1001:1001 --journal-dir "$J" "$V"
	if [ $RC -eq 0 ] && python3 "$TOOLS/snapshot.py" --diff --ignore-field ctime "$W/oracle.snap" "$W/killed.snap" >/dev/null; then
		finished=$((finished + 1))
		say "# note: killed after the commit (tree complete, plan exits 0); trying a shorter delay"
		vp_expect 0 "rollback of the committed apply" rollback --journal-dir "$J" "$V"
		back_to_pristine "rollback of the committed apply restored the volume"
		delay=$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 2 }')
		continue
	fi
	expect_rc 4 "plan on a tree with a hot journal"
	assert_file_match "recover" "$ERR" "plan tells to run volperm recover"
	vp_expect 4 "apply on a tree with a hot journal" apply --owner 1001:1001 --journal-dir "$J" "$V"
	vp_expect 4 "check on a tree with a hot journal" check --owner 1001:1001 --journal-dir "$J" "$V"
	vp_expect 4 "apply with another policy is blocked too" apply --owner 1005:1005 --journal-dir "$J" "$V"
	snap "$V" "$W/blocked.snap" --ctime
	snap_eq "$W/killed.snap" "$W/blocked.snap" "blocked plan/check/apply changed nothing (incl. ctime)"

	if [ $hot_back -le $hot_fwd ]; then
		hot_back=$((hot_back + 1))
		vp_expect 0 "recover (roll back) after SIGKILL at ${delay}s" recover --journal-dir "$J" "$V"
		back_to_pristine "recover restored the pre-apply tree exactly"
		vp_expect 0 "recover again: nothing to recover" recover --journal-dir "$J" "$V"
		assert_file_match "nothing to recover" "$OUT" "recover says nothing to recover"
		vp_expect 1 "check after recover: changes needed (hot journal gone)" check --owner 1001:1001 --journal-dir "$J" "$V"
		if [ $hot_back = 1 ]; then
			vp_expect 0 "apply after recover works" apply --owner 1001:1001 --quiet --journal-dir "$J" "$V"
			snap "$V" "$W/reapplied.snap"
			snap_eq "$W/oracle.snap" "$W/reapplied.snap" "apply after recover == chown -R -h"
			vp_expect 0 "rollback" rollback --journal-dir "$J" "$V"
			back_to_pristine "rollback after apply after recover"
		fi
	else
		hot_fwd=$((hot_fwd + 1))
		vp_expect 0 "recover --forward after SIGKILL at ${delay}s" recover --forward --journal-dir "$J" "$V"
		snap "$V" "$W/forward.snap"
		snap_eq "$W/oracle.snap" "$W/forward.snap" "recover --forward == a clean apply (chown -R -h oracle)"
		vp_expect 0 "check after recover --forward: compliant" check --owner 1001:1001 --journal-dir "$J" "$V"
		vp_expect 0 "rollback of the forward-recovered journal" rollback --journal-dir "$J" "$V"
		back_to_pristine "rollback after recover --forward restores the pre-apply tree"
	fi
	delay=$(awk -v d="$delay" 'BEGIN { printf "%.3f", d * 1.6 }')
done
say "# $attempts attempts: hot recoveries back $hot_back, forward $hot_fwd; $finished finished before the kill, $early killed before the journal"

# apply --recover: rolls the hot journal back first, then applies.
if [ $pristine = 1 ]; then
	J=$(new_jdir)
	done_kill=0
	for d in 0.3 0.15 0.6 0.08 1.0 0.04; do
		"$VP" apply --owner 1001:1001 --journal-dir "$J" --quiet "$V" >/dev/null 2>&1 &
		pid=$!
		sleep "$d"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rc=$?
		vp plan --owner 1001:1001 --journal-dir "$J" "$V"
		[ $RC = 4 ] && { done_kill=1; break; }
		# not hot: finished, or killed before the journal; back to pristine
		[ "$(count_journals "$J")" -gt 0 ] && [ $RC = 0 ] && vp rollback --journal-dir "$J" "$V"
		J=$(new_jdir)
	done
	if [ $done_kill = 1 ]; then
		vp_expect 0 "apply --recover after SIGKILL" apply --recover --owner 1001:1001 --journal-dir "$J" "$V"
		snap "$V" "$W/aprec.snap"
		snap_eq "$W/oracle.snap" "$W/aprec.snap" "apply --recover: tree == chown -R -h"
		vp_expect 0 "rollback after apply --recover" rollback --journal-dir "$J" "$V"
		back_to_pristine "rollback after apply --recover restores the pre-apply tree"
	else
		say "# note: apply --recover scenario: could not kill apply mid-run; not tested"
	fi
fi

finish
