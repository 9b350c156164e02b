#!/usr/bin/env bash
# tests/policy/run.sh [NAME...]: the policy tests (issue 5: --fsgroup,
# --grant/--revoke, --chmod, --root-mode, names from image files,
# --if-root-mismatch) without CTest; `ctest -L policy` in a build dir.
# root_mismatch_crash.sh needs a fault-injection build ($VOLPERM_FAULT).
# Environment, output and exit status: tests/lib/runner.sh.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/runner.sh
. "$(dirname "$0")/../lib/runner.sh"
runner_suite policy "$@"
