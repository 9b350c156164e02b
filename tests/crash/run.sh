#!/usr/bin/env bash
# tests/crash/run.sh [NAME...]: the crash-consistency tests without CTest
# (`ctest -L crash -j2` in a build dir), two at a time, the longest first.
# As root, on real trees. What is particular to this suite:
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
#   VOLPERM_TEST_TMPDIR=DIR              where the trees go (default $TMPDIR or /tmp)
# Each finished test's line carries its figures (steps, crash points,
# kills). The rest of the environment, the output and the exit status:
# tests/lib/runner.sh.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/runner.sh
. "$(dirname "$0")/../lib/runner.sh"
# the longest first, so that two at a time finish together
RUNNER_JOBS=${CRASH_JOBS:-2} \
	RUNNER_ORDER="sigkill_torture fault_apply fault_rollback powerloss enospc concurrency valgrind" \
	runner_suite crash "$@"
