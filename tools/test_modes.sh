#!/usr/bin/env bash
# Builds ump and runs its tests in each build mode of CMakePresets.json.
#
# Usage: tools/test_modes.sh [mode...]      (default: every mode, in the order below)
#        tools/test_modes.sh --list
# Each mode is a configure + build + test preset of the same name (binary dir build/<mode>):
#   gcc                   g++, RelWithDebInfo
#   clang                 clang++, Debug (-O0, ump's debug checks on)
#   asan-clang            clang++, ASan + UBSan (+ LSan), debug checks on
#   asan-gcc              g++, ASan + UBSan (+ LSan), debug checks and test-only delay points on
#   tsan-clang            clang++, TSan (adds the deliberate-race self-check), debug checks on
#   tsan-gcc              g++, TSan, debug checks and test-only delay points on
#   release-werror-gcc, release-werror-clang   Release, warnings are errors
#   noexcept              g++, -fno-exceptions for the library and every test, debug checks on
# The model checker (tests/model) runs its full search in the gcc mode only: it compiles its
# own copy of the library, so other modes' flags would not change what it checks, and the
# search takes minutes. The clang mode builds it too and runs its random searches shortened
# (model_check --quick), to keep it compiling and passing under the second compiler. The
# other modes never build it.
# The clang sanitizer modes test exactly the shipped protocol; the g++ ones compile in its
# delay points (UMP_TEST_HOOKS), which tests/stress/delay_points_stress_test.cpp drives.
#
# For each mode: cmake --preset, cmake --build --preset (2 jobs; UMP_JOBS overrides),
# ctest --preset (--output-on-failure). Configure and build output goes to
# build/logs/<mode>.log and is shown (its tail) only when that step fails; ctest output is
# shown as it runs. At the end, one summary line per mode with wall-clock and CPU seconds
# (CPU = user + system of the step's processes: on a busy machine, build CPU / jobs is a
# fair estimate of the build's wall time on an idle one). The exit status is nonzero if
# any mode failed. Extra arguments: UMP_CONFIGURE_ARGS for cmake --preset (e.g.
# "-DUMP_BUILD_FUZZ=OFF"), UMP_BUILD_TARGETS for the build (only these targets, e.g.
# "model_check"), UMP_CTEST_ARGS for ctest (e.g. "-L stress").
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

all_modes=(gcc clang asan-clang asan-gcc tsan-clang tsan-gcc release-werror-gcc release-werror-clang noexcept)
jobs="${UMP_JOBS:-2}"

if [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${all_modes[@]}"
  exit 0
fi
if [[ $# -gt 0 ]]; then
  modes=("$@")
else
  modes=("${all_modes[@]}")
fi

mkdir -p build/logs
summary=()
failed=0
total_start=$(date +%s)
TIMEFORMAT='%R %U %S'

# Runs "$@", appending its output to $log; sets step_rc, step_wall and step_cpu (seconds).
timed() {
  local t
  t=$( { time "$@" >>"$log" 2>&1; } 2>&1 )
  step_rc=$?  # the status of the timed command (the time keyword passes it through)
  read -r step_wall user sys <<<"$t"
  step_cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d", u + s }')
  step_wall=${step_wall%.*}
}

for mode in "${modes[@]}"; do
  log="build/logs/${mode}.log"
  : >"$log"
  echo "=== mode ${mode}: configure + build (log: ${log})"
  step=""
  # shellcheck disable=SC2086  # UMP_CONFIGURE_ARGS is a list of words on purpose
  timed cmake --preset "$mode" ${UMP_CONFIGURE_ARGS:-}
  conf_wall=$step_wall
  conf_cpu=$step_cpu
  if [[ $step_rc -ne 0 ]]; then
    step="configure"
  else
    # shellcheck disable=SC2086  # UMP_BUILD_TARGETS is a list of words on purpose
    timed cmake --build --preset "$mode" -j "$jobs" ${UMP_BUILD_TARGETS:+--target ${UMP_BUILD_TARGETS}}
    [[ $step_rc -ne 0 ]] && step="build"
  fi
  build_wall=$((conf_wall + step_wall))
  build_cpu=$((conf_cpu + step_cpu))
  if [[ -n "$step" ]]; then
    tail -n 60 "$log"
    summary+=("$(printf '%-21s FAIL (%s)  build %4ds (cpu %4ds)' "$mode" "$step" "$build_wall" "$build_cpu")")
    failed=1
    continue
  fi
  echo "=== mode ${mode}: ctest"
  t0=$(date +%s)
  # shellcheck disable=SC2086  # UMP_CTEST_ARGS is a list of words on purpose
  ctest --preset "$mode" ${UMP_CTEST_ARGS:-} 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  test_wall=$(($(date +%s) - t0))
  ntests=$(grep -Eo 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1 | grep -Eo '[0-9]+$')
  if [[ $rc -eq 0 ]]; then
    result="PASS"
  else
    result="FAIL (test)"
    failed=1
  fi
  summary+=("$(printf '%-21s %-11s  build %4ds (cpu %4ds)  test %4ds  %s tests' \
    "$mode" "$result" "$build_wall" "$build_cpu" "$test_wall" "${ntests:-?}")")
done

echo
echo "=== test_modes summary: $(($(date +%s) - total_start)) s in all, ${jobs} build jobs, load average now $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
printf '%s\n' "${summary[@]}"
exit "$failed"
