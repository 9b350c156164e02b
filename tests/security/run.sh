#!/usr/bin/env bash
# Run volperm's adversarial security tests: every tests/security/*.sh except
# this file (or only the ones named: `tests/security/run.sh races symlinks`).
#
#   VOLPERM=path/to/volperm tests/security/run.sh   (default: build/volperm)
#   VOLPERM_TEST_TIMEOUT=120                        per-test limit, seconds
#   VOLPERM_TEST_VERBOSE=1                          print every test's log
#
# The tests run as root on real trees, mounts and namespaces (see each
# script's header for the case of tests/security/README.md's table it
# covers). Each exits 0 (PASS), 77 (SKIP: it says why) or anything else
# (FAIL). Prints one line per test and a final line
# `N passed, N failed, N skipped`; exits 1 when any test failed.
# Under CTest: `ctest -L security` in a build dir.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/runner.sh
. "$(dirname "$0")/../lib/runner.sh"
runner_suite security "$@"
