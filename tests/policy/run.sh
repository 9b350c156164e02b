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
# 1 when any test failed. Under CTest: `ctest -L policy` in a build dir.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/runner.sh
. "$(dirname "$0")/../lib/runner.sh"
runner_suite policy "$@"
