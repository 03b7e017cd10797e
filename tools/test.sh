#!/usr/bin/env bash
# The test suite. Installs the Debian packages it needs, then builds and runs ctest.
#
# Usage: tools/test.sh            quick answer (about 9 min on 2 cores): every test in mode
#                                 asan-clang, then the model checker and lint (mode gcc)
#        tools/test.sh --all      every build mode (tools/test_modes.sh: g++ and clang plain
#                                 builds, ASan+UBSan and TSan with both compilers, release with
#                                 -Werror, -fno-exceptions), then each libFuzzer target for
#                                 UMP_FUZZ_SECONDS (default 30). CI runs this (.ci/run).
#        tools/test.sh MODE...    the named modes (as in CMakePresets.json)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh

start=$(date +%s)
status=0
fuzz=0
if [[ "${1:-}" == "--all" ]]; then
  shift
  fuzz=1
  tools/test_modes.sh || status=$?
elif [[ $# -eq 0 ]]; then
  # Every test under ASan + UBSan (clang), then what a sanitizer build cannot run: the model
  # checker and the lint checks, from a plain g++ build of the model checker alone.
  tools/test_modes.sh asan-clang || status=$?
  UMP_BUILD_TARGETS="model_check" UMP_CTEST_ARGS="-L model|lint" tools/test_modes.sh gcc || status=$?
else
  tools/test_modes.sh "$@" || status=$?
fi

if [[ $fuzz -eq 1 && -x tools/run_fuzzers.sh ]]; then
  echo "== fuzz: ${UMP_FUZZ_SECONDS:-30} s per target"
  tools/run_fuzzers.sh "${UMP_FUZZ_SECONDS:-30}" || status=$?
fi

echo "== test.sh finished in $(( $(date +%s) - start )) s, status ${status}"
exit "$status"
