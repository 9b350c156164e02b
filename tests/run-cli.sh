#!/usr/bin/env bash
# Run volperm's CLI tests: every tests/cli/*.sh except lib.sh (or only the
# ones named on the command line, e.g. `tests/run-cli.sh safety lock`).
#
#   VOLPERM=path/to/volperm tests/run-cli.sh      (default: build/volperm)
#   VOLPERM_TEST_TIMEOUT=900                      per-test limit, seconds
#   VOLPERM_TEST_VERBOSE=1                        print every test's log
#
# Each test exits 0 (PASS), 77 (SKIP: it prints why) or anything else
# (FAIL). Prints one line per test and a final line
# `N passed, N failed, N skipped`; exits 1 when any test failed.
# The same tests under CTest: `ctest -L cli`, `ctest -R cli/safety` in a
# build dir. The runner is tests/lib/runner.sh.
set -uo pipefail
# shellcheck source=SCRIPTDIR/lib/runner.sh
. "$(dirname "$0")/lib/runner.sh"
runner_suite cli "$@"
