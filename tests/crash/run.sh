#!/usr/bin/env bash
# Run volperm's crash-consistency tests (tests/crash/*.sh, except the
# libraries), or only the ones named on the command line, e.g.
# `tests/crash/run.sh enospc concurrency`. As root, on real trees.
#
#   VOLPERM=path/to/volperm              release build (default build/volperm)
#   VOLPERM_FAULT=path/to/volperm        build with -DVOLPERM_FAULT_INJECTION=ON
#                                        (default build-fault/volperm; the fault
#                                        tests skip without it)
#   CRASH_TREE_SIZE=20000 CRASH_KILLS=100   sigkill_torture.sh's tree and kills
#   CRASH_UNDO_KILLS=6                   kills during rollback/recover (each)
#   CRASH_SEED=N                         sigkill_torture.sh's random delays
#   CRASH_FAULT_CONFIGS="owner owner-b4 multi"  fault_apply/fault_rollback policies
#   CRASH_POWERLOSS_ROUNDS=8             powerloss.sh's random release-build snapshots
#   CRASH_FS=ext4|xfs|btrfs|none         the file system the trees live on (a fresh
#                                        loop-mounted image; none: the work dir)
#   CRASH_JOBS=2                         tests run at a time (they are independent)
#   VOLPERM_TEST_TIMEOUT=1200            per-test limit, seconds
#   VOLPERM_TEST_VERBOSE=1               print every test's log
#   VOLPERM_TEST_TMPDIR=DIR              where the trees go (default $TMPDIR or /tmp)
#
# Each test exits 0 (PASS), 77 (SKIP: it prints why) or anything else
# (FAIL). Prints one line per test as it finishes (with its figures: steps,
# crash points, kills) and a final line
# `N passed, N failed, N skipped`; exits 1 when any test failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export VOLPERM=${VOLPERM:-$repo/build/volperm}
case $VOLPERM in /*) ;; *) VOLPERM=$PWD/$VOLPERM ;; esac
export VOLPERM_FAULT=${VOLPERM_FAULT:-$repo/build-fault/volperm}
case $VOLPERM_FAULT in /*) ;; *) VOLPERM_FAULT=$PWD/$VOLPERM_FAULT ;; esac
limit=${VOLPERM_TEST_TIMEOUT:-1200}
jobs=${CRASH_JOBS:-2}

if [ ! -x "$VOLPERM" ]; then
	echo "crash/run.sh: no volperm binary at $VOLPERM (build first, or set VOLPERM)" >&2
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi

# the longest first, so that two at a time finish together
order=(sigkill_torture fault_apply fault_rollback powerloss enospc concurrency valgrind)
tests=()
if [ $# -gt 0 ]; then
	for t in "$@"; do
		t=${t%.sh}
		t=${t##*/}
		[ -f "$here/$t.sh" ] && [ "$t" != crashlib ] && [ "$t" != run ] ||
			{ echo "crash/run.sh: no test $t" >&2; exit 2; }
		tests+=("$here/$t.sh")
	done
else
	for t in "${order[@]}"; do tests+=("$here/$t.sh"); done
	for t in "$here"/*.sh; do
		n=$(basename "$t" .sh)
		case " ${order[*]} crashlib run " in *" $n "*) continue ;; esac
		tests+=("$t")
	done
fi

logdir=$(mktemp -d "${TMPDIR:-/tmp}/volperm-crash-logs.XXXXXX")
trap 'rm -rf "$logdir"' EXIT
echo "crash tests with $VOLPERM (fault build: $VOLPERM_FAULT), $jobs at a time"
passed=0 failed=0 skipped=0
t0=$(date +%s)

# report NAME: print the result of a finished test from its log
report() {
	local name=$1 log=$logdir/$1.log rc secs
	rc=$(cat "$logdir/$name.rc")
	secs=$(cat "$logdir/$name.secs")
	case $rc in
	0)
		passed=$((passed + 1))
		echo "PASS $name (${secs}s, $(grep -c '^ok: ' "$log") checks)"
		# the tests' own figures (steps, crash points, kills)
		grep -E '^# .*(steps|crash points|kills|covered|runs under|power-loss|sizes)' "$log" | sed 's/^/    /'
		grep '^SKIP-PART: ' "$log" | sed 's/^/    /'
		[ -n "${VOLPERM_TEST_VERBOSE:-}" ] && sed 's/^/    /' "$log"
		;;
	77)
		skipped=$((skipped + 1))
		echo "SKIP $name: $(grep -m1 '^SKIP: ' "$log" | sed 's/^SKIP: //')"
		[ -n "${VOLPERM_TEST_VERBOSE:-}" ] && sed 's/^/    /' "$log"
		;;
	*)
		failed=$((failed + 1))
		[ "$rc" = 124 ] && echo "    (timed out after ${limit}s)"
		echo "FAIL $name (exit $rc, ${secs}s, $(grep -c '^FAIL: ' "$log") failed checks of $(grep -c '^\(ok\|FAIL\): ' "$log"))"
		grep -E '^# .*(steps|crash points|kills|covered|runs under|power-loss|sizes)' "$log" | sed 's/^/    /'
		# the failures first (their first lines), then the log's tail
		awk '/^FAIL: / { n = 6; print; next } n > 0 && /^    / { n--; print; next } { n = 0 }' "$log" |
			head -n "${CRASH_FAIL_LINES:-120}" | cat -v | sed 's/^/    /'
		echo "    --- last lines of the log ---"
		tail -n 8 "$log" | cat -v | sed 's/^/    /'
		;;
	esac
}

# run_test PATH: one test, in the background; its exit status and time
# go to files next to its log
run_test() {
	local t=$1 name start rc
	name=$(basename "$t" .sh)
	start=$(date +%s.%N)
	timeout -k 10 "$limit" bash "$t" </dev/null >"$logdir/$name.log" 2>&1
	rc=$?
	awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }' >"$logdir/$name.secs"
	echo $rc >"$logdir/$name.rc"
}

declare -A running=()
for t in "${tests[@]}"; do
	while [ ${#running[@]} -ge "$jobs" ]; do
		wait -n -p done_pid
		name=${running[$done_pid]}
		unset "running[$done_pid]"
		report "$name"
	done
	run_test "$t" &
	running[$!]=$(basename "$t" .sh)
done
while [ ${#running[@]} -gt 0 ]; do
	wait -n -p done_pid
	name=${running[$done_pid]}
	unset "running[$done_pid]"
	report "$name"
done
echo "# total $(($(date +%s) - t0)) s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
