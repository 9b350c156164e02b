#!/usr/bin/env bash
# tests/run-cli.sh [NAME...]: the CLI tests (tests/cli/*.sh) without CTest,
# e.g. against an installed binary: `VOLPERM=/usr/bin/volperm tests/run-cli.sh
# safety lock`. In a build dir the same tests are `ctest -L cli`. Environment,
# output and exit status: tests/lib/runner.sh, which does the work.
set -uo pipefail
# shellcheck source=SCRIPTDIR/lib/runner.sh
. "$(dirname "$0")/lib/runner.sh"
runner_suite cli "$@"
