#!/usr/bin/env bash
# Run volperm's policy tests (issue 5: --fsgroup, --grant/--revoke, --chmod,
# --root-mode, names from image files, --if-root-mismatch): every
# tests/policy/*.sh except this file, or only the ones named on the command
# line (e.g. `tests/policy/run.sh grant chmod`).
#
#   VOLPERM=path/to/volperm tests/policy/run.sh   (default: build/volperm)
#   VOLPERM_FAULT=path/to/fault-build/volperm     (root_mismatch_crash.sh; default
#                                                  build-fault/volperm, else SKIP)
#   VOLPERM_TEST_TIMEOUT=900                      per-test limit, seconds
#   VOLPERM_TEST_VERBOSE=1                        print every test's log
#
# The tests run as root on real trees (they use tests/cli/lib.sh). Each
# exits 0 (PASS), 77 (SKIP: it prints why) or anything else (FAIL). Prints
# one line per test and a final line `N passed, N failed, N skipped`; exits
# 1 when any test failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export VOLPERM=${VOLPERM:-$repo/build/volperm}
case $VOLPERM in /*) ;; *) VOLPERM=$PWD/$VOLPERM ;; esac
limit=${VOLPERM_TEST_TIMEOUT:-900}

if [ ! -x "$VOLPERM" ]; then
	echo "run.sh: no volperm binary at $VOLPERM (build first, or set VOLPERM)" >&2
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi

tests=()
if [ $# -gt 0 ]; then
	for t in "$@"; do
		t=${t%.sh}
		t=${t##*/}
		if [ "$t" = run ] || [ ! -f "$here/$t.sh" ]; then
			echo "run.sh: no test $t" >&2
			exit 2
		fi
		tests+=("$here/$t.sh")
	done
else
	for t in "$here"/*.sh; do
		[ "$(basename "$t")" = run.sh ] && continue
		tests+=("$t")
	done
fi

logdir=$(mktemp -d "${TMPDIR:-/tmp}/volperm-policy-logs.XXXXXX")
trap 'rm -rf "$logdir"' EXIT
echo "policy tests with $VOLPERM"
passed=0 failed=0 skipped=0
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	log=$logdir/$name.log
	start=$(date +%s.%N)
	timeout -k 10 "$limit" bash "$t" </dev/null >"$log" 2>&1
	rc=$?
	secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	case $rc in
	0)
		passed=$((passed + 1))
		echo "PASS $name (${secs}s, $(grep -c '^ok: ' "$log") checks)"
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
		echo "FAIL $name (exit $rc, ${secs}s; $(grep -c '^FAIL: ' "$log") of $(grep -cE '^(ok|FAIL): ' "$log") checks failed)"
		# The failures first, then the log's tail for context.
		awk '/^FAIL: / { n = 12; print; next } n > 0 && /^    / { n--; print; next } { n = 0 }' "$log" |
			head -n 150 | cat -v | sed 's/^/    /'
		echo "    --- last lines of the log ---"
		tail -n 25 "$log" | cat -v | sed 's/^/    /'
		;;
	esac
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
