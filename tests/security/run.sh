#!/usr/bin/env bash
# tests/security/run.sh [NAME...]: the adversarial security tests without
# CTest (`ctest -L security` in a build dir); their cases are the table of
# tests/security/README.md. Environment, output and exit status:
# tests/lib/runner.sh (per-test limit here 120 s).
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/runner.sh
. "$(dirname "$0")/../lib/runner.sh"
runner_suite security "$@"
