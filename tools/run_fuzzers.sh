#!/usr/bin/env bash
# tools/run_fuzzers.sh [SECONDS] — builds ump's libFuzzer targets and runs each for SECONDS.
#
# Builds fuzz/ops_fuzzer and fuzz/cell_fuzzer with clang (-fsanitize=fuzzer plus ASan and
# UBSan) in build-fuzz/, then runs them one after the other, each for SECONDS (default 60),
# seeded from the committed corpus fuzz/corpus/<target>/. New inputs go to
# build-fuzz/fuzz-work/<target>/corpus (the committed corpus is only read), crash, timeout,
# leak and OOM inputs to build-fuzz/fuzz-work/<target>/artifacts/ (only those written by
# this run count as findings). Prints, per target, the
# executions, exec/s and final coverage; exits 1 if any target reported a finding.
#
# Environment: CXX (default clang++; must be clang), UMP_FUZZ_BUILD_DIR (default build-fuzz),
# UMP_FUZZ_ARGS (extra libFuzzer flags, e.g. "-seed=1"), UMP_FUZZ_TARGETS (default both).
#
# Reproduce a finding:   build-fuzz/fuzz/<target> build-fuzz/fuzz-work/<target>/artifacts/crash-...
#                        (UMP_FUZZ_TRACE=1 makes ops_fuzzer print each operation)
# Fold new inputs into the committed corpus (kept small: minimize into a fresh directory):
#   build-fuzz/fuzz/<t> -merge=1 NEW_DIR fuzz/corpus/<t> build-fuzz/fuzz-work/<t>/corpus
#   then replace fuzz/corpus/<t>/ by NEW_DIR (keep the seed-* files: fuzz/make_seeds.py).
set -euo pipefail

secs=${1:-60}
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
build=${UMP_FUZZ_BUILD_DIR:-$root/build-fuzz}
cxx=${CXX:-clang++}
targets=${UMP_FUZZ_TARGETS:-"ops_fuzzer cell_fuzzer"}
extra=${UMP_FUZZ_ARGS:-}

if ! "$cxx" --version 2>/dev/null | grep -qi clang; then
  echo "run_fuzzers: libFuzzer needs clang; CXX=$cxx is not clang" >&2
  exit 2
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DUMP_BUILD_FUZZ=ON -DUMP_BUILD_TESTS=OFF -DUMP_BUILD_EXAMPLES=OFF -DUMP_BUILD_BENCHMARKS=OFF \
  -DUMP_INSTALL=OFF -DUMP_SANITIZE= >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j2 --target $targets

max_len_for() {
  case "$1" in
    ops_fuzzer) echo 1024 ;;  # two bytes per operation: up to 512 operations
    cell_fuzzer) echo 256 ;;
    *) echo 512 ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

found=0
summary=""
for t in $targets; do
  work=$build/fuzz-work/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  log=$work/log.txt
  stamp=$work/.started
  touch "$stamp"
  echo "== $t: ${secs}s, log in $log"
  rc=0
  # Nothing in a target may block: a run longer than -timeout seconds is a hang, a finding.
  # shellcheck disable=SC2086
  "$build/fuzz/$t" "$work/corpus" "$root/fuzz/corpus/$t" -max_total_time="$secs" \
    -max_len="$(max_len_for "$t")" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" $extra >"$log" 2>&1 || rc=$?
  artifacts=$(find "$work/artifacts" -type f -newer "$stamp" | wc -l)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  line="$t: rc=$rc execs=${execs:-?} exec/s=${rate:-?} ${cov:-cov: ?} artifacts=$artifacts"
  echo "$line"
  summary+="$line"$'\n'
  if [ "$rc" -ne 0 ] || [ "$artifacts" -ne 0 ]; then
    found=1
    echo "-- $t reported a finding:" >&2
    grep -E 'expectation broken|ERROR: |runtime error|SUMMARY|Test unit written' "$log" | head -20 >&2 || true
  fi
done

echo "== summary"
printf '%s' "$summary"
exit "$found"
