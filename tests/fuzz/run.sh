#!/usr/bin/env bash
# Run each libFuzzer harness for a number of seconds (default 30), starting
# from the committed seed corpora (tests/fuzz/corpus/) plus whatever earlier
# runs added to the working corpus (OUTDIR/corpus-work/, not committed).
#
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]   (default: $FUZZ_SECONDS or 30,
#                                              all harnesses)
#   tests/fuzz/run.sh --build                  (re)build the harnesses only
# CTest: `ctest -L fuzz` builds once (test fuzz/build), then runs a test
# fuzz/NAME for each tests/fuzz/fuzz_NAME.c, $FUZZ_SECONDS each.
#   FUZZ_SECONDS=N    seconds per harness when no SECONDS argument is given
#   FUZZ_OUT=DIR      where build.sh put the binaries (default build-fuzz;
#                     they are built first when missing)
#
# Prints, per harness, the executions, the wall and CPU time, the corpus
# size and the number of crashes; a crash leaves its input in
# OUTDIR/artifacts/ and makes the script exit 1. Then a summary
# `fuzz: N harnesses, N execs, N crashes` and, last, the line the test
# scripts share: `N passed, N failed, N skipped` (a harness passes when it
# ran its time without a crash).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-$repo/build-fuzz}
case $out in /*) ;; *) out=$PWD/$out ;; esac
if [ "${1:-}" = --build ]; then
	exec "$here/build.sh" "$out"
fi
secs=${FUZZ_SECONDS:-30}
case ${1:-} in
'') ;;
*[!0-9]*) ;; # a harness name
*) secs=$1; shift ;;
esac
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
	for h in "$here"/fuzz_*.c; do harnesses+=("$(basename "$h" .c)"); done
fi

for h in "${harnesses[@]}"; do
	if [ ! -x "$out/$h" ]; then
		"$here/build.sh" "$out" || {
			echo "fuzz/run.sh: build failed" >&2
			echo "0 passed, ${#harnesses[@]} failed, 0 skipped"
			exit 1
		}
		break
	fi
done

total_execs=0 total_crashes=0 passed=0 failed=0
for h in "${harnesses[@]}"; do
	seeds=$here/corpus/${h#fuzz_}
	work=$out/corpus-work/${h#fuzz_}
	art=$out/artifacts/$h
	mkdir -p "$work" "$art"
	log=$out/$h.log
	marker=$out/.$h.start
	touch "$marker"
	sleep 1 # artifacts of this run are newer than the marker
	TIMEFORMAT='%R %U %S'
	t=$( { time "$out/$h" -max_total_time="$secs" -print_final_stats=1 -timeout=20 \
		-rss_limit_mb=2048 -artifact_prefix="$art/" "$work" "$seeds" >"$log" 2>&1; } 2>&1)
	rc=$?
	read -r wall usr sys <<<"$t"
	execs=$(awk -F: '/stat::number_of_executed_units/ { gsub(/ /, "", $NF); print $NF }' "$log")
	crashes=$(find "$art" -type f -newer "$marker" | wc -l)
	if [ $rc -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
	corpus=$(find "$work" -type f | wc -l)
	printf '%s: %s execs in %.0f s wall, %.1f s CPU, corpus %s (+%s seeds), exit %s, crashes %s\n' \
		"$h" "${execs:-0}" "$wall" "$(awk -v u="$usr" -v s="$sys" 'BEGIN { print u + s }')" \
		"$corpus" "$(find "$seeds" -type f | wc -l)" "$rc" "$crashes"
	if [ $rc -ne 0 ]; then
		grep -m1 -E 'ERROR|deadly signal|property violated|runtime error' "$log" | sed 's/^/    /'
		echo "    log: $log; inputs: $art"
	fi
	total_execs=$((total_execs + ${execs:-0}))
	total_crashes=$((total_crashes + crashes))
	if [ "$crashes" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "fuzz: ${#harnesses[@]} harnesses, $total_execs execs, $total_crashes crashes"
echo "$passed passed, $failed failed, 0 skipped"
[ "$failed" -eq 0 ]
