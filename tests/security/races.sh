#!/usr/bin/env bash
# Case 2 (CVE-2017-18925, CVE-2018-6954 style): while plan, apply and
# rollback run, a hostile process swaps directories of the volume for
# symlinks to a decoy /etc-like dir, atomically and in a tight loop
# (renameat2 RENAME_EXCHANGE): a leaf dir (V/d <-> symlink to a decoy copy of
# it with the same names) and a middle path component (V/a/b, so that
# "a/b/c/f" resolves into the decoy if anything follows it), and a leaf file
# (V/other/o0 <-> a symlink to the decoy's passwd). The decoy mirrors
# every name, so a path-based chown that followed a swapped-in link would hit
# a decoy file. Many runs, bounded by time; then: the decoy is byte-identical
# (ctime included), exits were honest (0, 3, 5 or 6; never a crash), every
# NDJSON stream stayed valid, and once the racer stops, apply converges.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup

BUDGET=${VOLPERM_RACE_SECONDS:-12}
MAXRUNS=${VOLPERM_RACE_RUNS:-200}

J=$(new_jdir)
E=$W/etc
make_decoy "$E"
V=$W/vol

# The volume: d/ (swapped leaf dir), a/b/c (b swapped: a middle component),
# other/ (stable). The decoy holds a mirror of d and of b with the same names.
build() {
	local top=$1 i
	mkdir -p "$top/d/s/t" "$top/b/c/e"
	for ((i = 0; i < 120; i++)); do : >"$top/d/f$i"; done
	for ((i = 0; i < 30; i++)); do : >"$top/d/s/g$i"; : >"$top/d/s/t/h$i"; done
	for ((i = 0; i < 60; i++)); do : >"$top/b/c/f$i"; done
	for ((i = 0; i < 20; i++)); do : >"$top/b/c/e/g$i"; done
	printf '#!/bin/sh\n' >"$top/d/setuid"
	chmod 4755 "$top/d/setuid"
}
mkdir -p "$V/a" "$V/other"
build "$W/stage"
mv "$W/stage/d" "$V/d"
mv "$W/stage/b" "$V/a/b"
for ((i = 0; i < 40; i++)); do : >"$V/other/o$i"; done
chown -R 1000:1000 "$V"
chmod 4755 "$V/d/setuid"
# decoy mirrors, root-owned like the rest of the decoy
build "$W/stage2"
mv "$W/stage2/d" "$E/d-mirror"
mv "$W/stage2/b" "$E/b-mirror"
chown -R 0:0 "$E/d-mirror" "$E/b-mirror"
chmod 4755 "$E/d-mirror/setuid"
ln -s "$E/d-mirror" "$V/.d-swap"            # absolute
ln -s ../../etc/b-mirror "$V/a/.b-swap"      # relative, from V/a
ln -s "$E/passwd" "$V/other/.o0-swap"        # a leaf file <-> a link to the decoy
chown -h 1000:1000 "$V/.d-swap" "$V/a/.b-swap" "$V/other/.o0-swap"
decoy_snap "$E" "$W/decoy0.snap"
say "# volume: $(entries "$V") entries; decoy: $(entries "$E") entries; budget ${BUDGET}s / $MAXRUNS runs"

start_racer exchange "$V/d" "$V/.d-swap" "$V/a/b" "$V/a/.b-swap" "$V/other/o0" "$V/other/.o0-swap" --pause-us "${VOLPERM_RACE_PAUSE_US:-50}" --max-seconds $((BUDGET + 40))

runs=0 hits=0 badrc=0 crashes=0 applies=0 rollbacks=0 plans=0 recovers=0
declare -A rcs=()
end=$(($(date +%s) + BUDGET))
while [ "$runs" -lt "$MAXRUNS" ] && [ "$(date +%s)" -lt "$end" ]; do
	runs=$((runs + 1))
	o=$((1001 + runs % 2))
	case $((runs % 5)) in
	0)
		vpt 20 rollback --json --journal-dir "$J" "$V"
		rollbacks=$((rollbacks + 1))
		ok="0 2 6"
		kind=rollback
		;;
	1)
		vpt 20 plan --owner "$o:$o" --json --journal-dir "$J" "$V"
		plans=$((plans + 1))
		ok="0 4 5"
		kind=plan
		;;
	*)
		vpt 20 apply --owner "$o:$o" --json --journal-dir "$J" "$V"
		applies=$((applies + 1))
		ok="0 3 5 6"
		kind=apply
		;;
	esac
	rcs[$kind:$RC]=$((${rcs[$kind:$RC]:-0} + 1))
	jout=$OUT
	printf '%s\n' "$jout" >>"$W/json-outputs"
	if [ "$RC" -ge 124 ]; then
		crashes=$((crashes + 1))
		fail "$kind run $runs: exit $RC (timeout or signal)"
		show_run
	elif [ "$RC" = 4 ]; then
		# An interrupted rollback (errors) leaves the journal hot: finish it
		# (still racing) and go on.
		vpt 20 recover --journal-dir "$J" "$V"
		recovers=$((recovers + 1))
	elif ! rc_in "$RC" "$ok"; then
		badrc=$((badrc + 1))
		fail "$kind run $runs: unexpected exit $RC (expected one of: $ok)"
		show_run
	fi
	if [ "$RC" != 0 ] || grep -q '"event":"skip"' "$jout" 2>/dev/null; then
		hits=$((hits + 1))
	fi
	if grep -q '"path":"'"$E" "$jout" 2>/dev/null; then
		fail "$kind run $runs: an event names a decoy path"
	fi
	# cheap early check of the decoy's most precious files
	if [ "$(stat -c '%u:%g %a' "$E/d-mirror/setuid" "$E/b-mirror/c/f0" "$E/passwd" | tr '\n' ' ')" != \
		"0:0 4755 0:0 644 0:0 644 " ]; then
		fail "decoy changed during $kind run $runs:"
		stat -c '    %n %u:%g %a' "$E/d-mirror/setuid" "$E/b-mirror/c/f0" "$E/passwd"
		break
	fi
done
stop_racer
swaps=$RACER_SWAPS
say "# $runs runs ($applies apply, $plans plan, $rollbacks rollback, $recovers recover) against $swaps swaps"
say "# exit codes: $(for k in "${!rcs[@]}"; do printf '%s=%s ' "$k" "${rcs[$k]}"; done)"
assert_true "the racer ran ($swaps swaps)" test "${swaps:-0}" -gt 1000
assert_true "at least 20 runs under the race ($runs)" test "$runs" -ge 20
assert_true "the race was felt: $hits runs saw the tree change (skip, error or rollback)" test "$hits" -gt 0
assert_eq "$crashes" 0 "no run crashed or hung"
assert_eq "$badrc" 0 "every exit status was an honest one"
# every --json stream (one per run) must be valid NDJSON: one python for all
if python3 - "$W/json-outputs" <<'PY'
import json, sys
bad = 0
for f in open(sys.argv[1]).read().split():
    try:
        evs = [json.loads(l) for l in open(f, encoding="utf-8")]
        assert evs and all(isinstance(o, dict) and "event" in o for o in evs)
        assert [o["event"] for o in evs].count("summary") == 1 and evs[-1]["event"] == "summary"
    except Exception as e:
        bad += 1
        print("    invalid NDJSON in %s: %r" % (f, e))
sys.exit(1 if bad else 0)
PY
then
	pass "every NDJSON stream of the racing runs was valid"
else
	fail "some NDJSON streams were invalid"
fi
decoy_same "$E" "$W/decoy0.snap" "decoy (with mirrors of every swapped path) byte-identical after $runs racing runs"
assert_true "racer left V/d a real directory" test -d "$V/d" -a ! -L "$V/d"
assert_true "racer left V/a/b a real directory" test -d "$V/a/b" -a ! -L "$V/a/b"

# --- after the race: nothing hot, apply converges, decoy still untouched ---
vp "recover" --journal-dir "$J" "$V"
expect_rc_in "0" "recover after the race: nothing left hot"
vp_expect 0 "apply after the race converges" apply --owner 1005:1005 --quiet --journal-dir "$J" "$V"
vp_expect 0 "check: compliant" check --owner 1005:1005 --journal-dir "$J" "$V"
assert_eq "$(find "$V" \( ! -user 1005 -o ! -group 1005 \) -printf '%P\n' | head -n 5)" "" "every entry of the volume is 1005:1005"
assert_eq "$(mode_of "$V/d/setuid")" 0755 "setuid in the volume cleared, never re-added"
decoy_same "$E" "$W/decoy0.snap" "decoy still byte-identical"

finish
