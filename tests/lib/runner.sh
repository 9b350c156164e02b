# shellcheck shell=bash
# tests/lib/runner.sh: the one runner of volperm's shell tests.
#
# A test is a script that exits 0 (PASS), 77 (SKIP: it printed a line
# `SKIP: why`) or anything else (FAIL); its checks print `ok: ...` and
# `FAIL: ...` lines (tests/cli/lib.sh). The runner keeps the test's output in
# a log file and prints a short report: one PASS/SKIP/FAIL line, the suite's
# figures, and for a failure the failed checks and the log's tail, so that a
# CI log stays readable when a test writes thousands of lines.
#
# Executed (that is how CTest runs every shell test; see CMakeLists.txt):
#
#   tests/lib/runner.sh [--timeout SECS] [--name NAME] SCRIPT [ARGS...]
#
#   runs `bash SCRIPT ARGS...` under timeout(1), the log in
#   $VOLPERM_TEST_LOGDIR/SUITE/NAME.log (kept; default: a temporary dir,
#   removed) where SUITE is SCRIPT's directory name and NAME its base name;
#   exits 0, 77 or 1.
#
# Sourced by the suite runners (tests/run-cli.sh, tests/{policy,security,
# crash}/run.sh), which call `runner_suite SUITE "$@"`: every test of the
# suite, or the ones named, one PASS/SKIP/FAIL report each, then the line
# `N passed, N failed, N skipped` (exit 1 when any failed). They are for
# running a suite without a CMake build dir (any binary, through $VOLPERM;
# README.md "Tests"); this file holds all they do, so that they stay a few
# lines each and document only what is particular to their suite.
#
# Environment (both ways):
#   VOLPERM=path/to/volperm        the binary under test (default build/volperm)
#   VOLPERM_FAULT=path/to/volperm  a -DVOLPERM_FAULT_INJECTION=ON build (default
#                                  build-fault/volperm; the tests that need it skip)
#   VOLPERM_TEST_TIMEOUT=SECS      per-test limit (the suite's default below;
#                                  --timeout wins)
#   VOLPERM_TEST_VERBOSE=1         print every test's whole log
#   VOLPERM_TEST_LOGDIR=DIR        keep the logs there
#
# Which scripts are tests: tests/SUITE/*.sh except run.sh and the sourced
# libraries (*lib.sh). CMakeLists.txt applies the same rule.

RUNNER_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# runner_config SUITE: the suite's defaults.
#   RUNNER_LIMIT    per-test limit, seconds (CMakeLists.txt passes the same)
#   RUNNER_FIGURES  ERE of the log lines worth showing for a finished test
#   RUNNER_FAIL_CONTEXT, RUNNER_FAIL_LINES, RUNNER_TAIL
#                   for a failure: lines shown after each FAIL line, at most
#                   this many in all, then the log's last lines
runner_config() {
	RUNNER_SUITE=$1
	RUNNER_LIMIT=900
	RUNNER_FIGURES='^SKIP-PART: |^SKIP PART: '
	RUNNER_FAIL_CONTEXT=12 RUNNER_FAIL_LINES=150 RUNNER_TAIL=25
	case $1 in
	security) RUNNER_LIMIT=120 ;;
	crash)
		RUNNER_LIMIT=1200
		# the tests' own figures: steps, crash points, kills
		RUNNER_FIGURES='^# .*(steps|crash points|kills|covered|runs under|power-loss|sizes)|^SKIP-PART: '
		# the crash logs are long: the first lines of each failure
		RUNNER_FAIL_CONTEXT=6 RUNNER_FAIL_LINES=${CRASH_FAIL_LINES:-120} RUNNER_TAIL=8
		;;
	e2e | fuzz)
		RUNNER_LIMIT=3600
		# these scripts count their own scenarios and harnesses
		RUNNER_FIGURES='^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$|^fuzz_[a-z_]+: |^(SKIP|FAILED?): '
		;;
	esac
	RUNNER_LIMIT=${VOLPERM_TEST_TIMEOUT:-$RUNNER_LIMIT}
}

# runner_binaries: absolute $VOLPERM and $VOLPERM_FAULT (a test may cd).
runner_binaries() {
	export VOLPERM=${VOLPERM:-$RUNNER_REPO/build/volperm}
	case $VOLPERM in /*) ;; *) VOLPERM=$PWD/$VOLPERM ;; esac
	export VOLPERM_FAULT=${VOLPERM_FAULT:-$RUNNER_REPO/build-fault/volperm}
	case $VOLPERM_FAULT in /*) ;; *) VOLPERM_FAULT=$PWD/$VOLPERM_FAULT ;; esac
}

# runner_is_test PATH: a test script, not a runner or a library.
runner_is_test() {
	local n
	n=$(basename "$1")
	case $n in run.sh | *lib.sh) return 1 ;; *.sh) return 0 ;; *) return 1 ;; esac
}

# runner_exec LOG SCRIPT [ARGS...]: run it, output to LOG; sets RUNNER_RC
# and RUNNER_SECS.
runner_exec() {
	local log=$1 start
	shift
	start=$(date +%s.%N)
	# Own stdin: a test never reads the terminal. SIGTERM first, so that the
	# test's exit trap unmounts and removes what it made.
	timeout -k 10 "$RUNNER_LIMIT" bash "$@" </dev/null >"$log" 2>&1
	RUNNER_RC=$?
	RUNNER_SECS=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
}

# runner_report NAME LOG RC SECS: print the report of a finished test;
# returns 0 (passed), 77 (skipped) or 1 (failed).
runner_report() {
	local name=$1 log=$2 rc=$3 secs=$4 summary
	# A script that counts its own scenarios (e2e, fuzz) and skipped them all
	# did not pass: it is a skip.
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -n 1)
	if [ "$rc" = 0 ] && [[ $summary =~ ^0\ passed,\ 0\ failed,\ [1-9] ]]; then
		rc=77
	fi
	case $rc in
	0)
		echo "PASS $name (${secs}s, $(grep -c '^ok: ' "$log") checks)"
		grep -E "$RUNNER_FIGURES" "$log" | sed 's/^/    /'
		[ -z "${VOLPERM_TEST_VERBOSE:-}" ] || sed 's/^/    /' "$log"
		return 0
		;;
	77)
		echo "SKIP $name: $(grep -m1 '^SKIP: ' "$log" | sed 's/^SKIP: //')${summary:+ ($summary)}"
		[ -z "${VOLPERM_TEST_VERBOSE:-}" ] || sed 's/^/    /' "$log"
		return 77
		;;
	esac
	[ "$rc" = 124 ] && echo "    (timed out after ${RUNNER_LIMIT}s)"
	echo "FAIL $name (exit $rc, ${secs}s; $(grep -c '^FAIL: ' "$log") of $(grep -cE '^(ok|FAIL): ' "$log") checks failed)"
	grep -E "$RUNNER_FIGURES" "$log" | sed 's/^/    /'
	# The failures first (each with the indented lines after it), then the
	# log's tail for context.
	awk -v ctx="$RUNNER_FAIL_CONTEXT" '
		/^FAIL: / { n = ctx; print; next }
		n > 0 && /^    / { n--; print; next }
		{ n = 0 }' "$log" |
		head -n "$RUNNER_FAIL_LINES" | cat -v | sed 's/^/    /'
	echo "    --- last lines of the log${RUNNER_KEPT_LOG:+ ($log)} ---"
	tail -n "$RUNNER_TAIL" "$log" | cat -v | sed 's/^/    /'
	[ -z "${VOLPERM_TEST_VERBOSE:-}" ] || sed 's/^/    /' "$log"
	return 1
}

# runner_logdir SUITE: where the logs go (kept under VOLPERM_TEST_LOGDIR).
runner_logdir() {
	if [ -n "${VOLPERM_TEST_LOGDIR:-}" ]; then
		RUNNER_LOGS=$VOLPERM_TEST_LOGDIR/$1
		RUNNER_KEPT_LOG=1
		mkdir -p "$RUNNER_LOGS" || exit 1
	else
		RUNNER_LOGS=$(mktemp -d "${TMPDIR:-/tmp}/volperm-$1-logs.XXXXXX") || exit 1
		RUNNER_KEPT_LOG=
		# shellcheck disable=SC2064 # expand now: the dir of this run
		trap "rm -rf '$RUNNER_LOGS'" EXIT
	fi
}

# runner_one [--timeout SECS] [--name NAME] SCRIPT [ARGS...]: CTest's entry.
runner_one() {
	local limit='' name='' script rc
	while [ $# -gt 0 ]; do
		case $1 in
		--timeout) limit=$2; shift 2 ;;
		--name) name=$2; shift 2 ;;
		*) break ;;
		esac
	done
	[ $# -ge 1 ] || { echo "usage: runner.sh [--timeout SECS] [--name NAME] SCRIPT [ARGS...]" >&2; exit 2; }
	script=$1
	runner_config "$(basename "$(dirname "$script")")"
	[ -z "$limit" ] || RUNNER_LIMIT=$limit
	[ -n "$name" ] || name=$(basename "$script" .sh)
	runner_binaries
	runner_logdir "$RUNNER_SUITE"
	runner_exec "$RUNNER_LOGS/$name.log" "$@"
	runner_report "$name" "$RUNNER_LOGS/$name.log" "$RUNNER_RC" "$RUNNER_SECS"
	rc=$?
	exit "$rc"
}

# runner_suite SUITE [NAME...]: the suite runners' entry: the tests of
# tests/SUITE/. Optionally set for the call: RUNNER_ORDER (names to start
# first), RUNNER_JOBS (tests at a time; default 1).
runner_suite() {
	local dir=$RUNNER_REPO/tests/$1 jobs=${RUNNER_JOBS:-1}
	local t n passed=0 failed=0 skipped=0 t0=$SECONDS
	local -a tests=()
	runner_config "$1"
	shift
	runner_binaries
	if [ ! -x "$VOLPERM" ]; then
		echo "$RUNNER_SUITE: no volperm binary at $VOLPERM (build first, or set VOLPERM)" >&2
		echo "0 passed, 1 failed, 0 skipped"
		exit 1
	fi
	if [ $# -gt 0 ]; then
		for t in "$@"; do
			t=${t%.sh}
			t=$dir/${t##*/}.sh
			if [ ! -f "$t" ] || ! runner_is_test "$t"; then
				echo "$RUNNER_SUITE: no test $(basename "$t" .sh)" >&2
				exit 2
			fi
			tests+=("$t")
		done
	else
		for n in ${RUNNER_ORDER:-}; do
			[ -f "$dir/$n.sh" ] && tests+=("$dir/$n.sh")
		done
		for t in "$dir"/*.sh; do
			runner_is_test "$t" || continue
			case " ${RUNNER_ORDER:-} " in *" $(basename "$t" .sh) "*) continue ;; esac
			tests+=("$t")
		done
	fi
	runner_logdir "$RUNNER_SUITE"
	echo "$RUNNER_SUITE tests with $VOLPERM${RUNNER_JOBS:+, $jobs at a time}"

	# A finished test's report; the counts.
	_runner_done() {
		runner_report "$1" "$RUNNER_LOGS/$1.log" "$(cat "$RUNNER_LOGS/$1.rc")" \
			"$(cat "$RUNNER_LOGS/$1.secs")"
		case $? in
		0) passed=$((passed + 1)) ;;
		77) skipped=$((skipped + 1)) ;;
		*) failed=$((failed + 1)) ;;
		esac
	}
	# Up to $jobs tests in the background; each one's status and time go
	# to files next to its log, and it is reported when it ends.
	local -A running=()
	local done_pid
	for t in "${tests[@]}"; do
		while [ ${#running[@]} -ge "$jobs" ]; do
			wait -n -p done_pid
			n=${running[$done_pid]}
			unset "running[$done_pid]"
			_runner_done "$n"
		done
		n=$(basename "$t" .sh)
		(
			runner_exec "$RUNNER_LOGS/$n.log" "$t"
			echo "$RUNNER_SECS" >"$RUNNER_LOGS/$n.secs"
			echo "$RUNNER_RC" >"$RUNNER_LOGS/$n.rc"
		) &
		running[$!]=$n
	done
	while [ ${#running[@]} -gt 0 ]; do
		wait -n -p done_pid
		n=${running[$done_pid]}
		unset "running[$done_pid]"
		_runner_done "$n"
	done
	echo "# total $((SECONDS - t0)) s"
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -uo pipefail
	runner_one "$@"
fi
