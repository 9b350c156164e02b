#!/usr/bin/env bash
# Run volperm's adversarial security tests: every tests/security/*.sh except
# this file (or only the ones named: `tests/security/run.sh races symlinks`).
#
#   VOLPERM=path/to/volperm tests/security/run.sh   (default: build/volperm)
#   VOLPERM_TEST_TIMEOUT=120                        per-test limit, seconds
#   VOLPERM_TEST_VERBOSE=1                          print every test's log
#
# The tests run as root on real trees, mounts and namespaces (see each
# script's header for the case of docs/security.md it covers). Each exits 0
# (PASS), 77 (SKIP: it says why) or anything else (FAIL). Prints one line per
# test and a final line `N passed, N failed, N skipped`; exits 1 when any
# test failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export VOLPERM=${VOLPERM:-$repo/build/volperm}
case $VOLPERM in /*) ;; *) VOLPERM=$PWD/$VOLPERM ;; esac
limit=${VOLPERM_TEST_TIMEOUT:-120}
self=$(basename "$0")

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
		if [ ! -f "$here/$t.sh" ] || [ "$t.sh" = "$self" ]; then
			echo "run.sh: no test $t" >&2
			exit 2
		fi
		tests+=("$here/$t.sh")
	done
else
	for t in "$here"/*.sh; do
		[ "$(basename "$t")" = "$self" ] && continue
		tests+=("$t")
	done
fi

logdir=$(mktemp -d "${TMPDIR:-/tmp}/volperm-sec-logs.XXXXXX")
trap 'rm -rf "$logdir"' EXIT
echo "security tests with $VOLPERM"
passed=0 failed=0 skipped=0
t0=$(date +%s)
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
		echo "FAIL $name (exit $rc, ${secs}s)"
		awk '/^FAIL: / { n = 12; print; next } n > 0 && /^    / { n--; print; next } { n = 0 }' "$log" |
			head -n 150 | cat -v | sed 's/^/    /'
		echo "    --- last lines of the log ---"
		tail -n 25 "$log" | cat -v | sed 's/^/    /'
		;;
	esac
done
echo "# total $(($(date +%s) - t0))s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
