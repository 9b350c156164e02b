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
# Under CTest: `ctest -L crash -j2` in a build dir (powerloss runs alone
# there). The runner is tests/lib/runner.sh.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/runner.sh
. "$(dirname "$0")/../lib/runner.sh"
# the longest first, so that two at a time finish together
RUNNER_JOBS=${CRASH_JOBS:-2} \
	RUNNER_ORDER="sigkill_torture fault_apply fault_rollback powerloss enospc concurrency valgrind" \
	runner_suite crash "$@"
