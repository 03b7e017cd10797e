#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the Debian packages it needs, then builds
# and runs ctest in every build mode (tools/test_modes.sh: g++ and clang plain builds,
# ASan+UBSan and TSan with both compilers, release with -Werror, -fno-exceptions),
# then gives each libFuzzer target a short budget (UMP_FUZZ_SECONDS, default 30).
# Usage: tools/test.sh [mode...]   (modes as in CMakePresets.json; default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh

start=$(date +%s)
status=0
tools/test_modes.sh "$@" || status=$?

if [[ $# -eq 0 && -x tools/run_fuzzers.sh ]]; then
  echo "== fuzz: ${UMP_FUZZ_SECONDS:-30} s per target"
  tools/run_fuzzers.sh "${UMP_FUZZ_SECONDS:-30}" || status=$?
fi

echo "== test.sh finished in $(( $(date +%s) - start )) s, status ${status}"
exit "$status"
