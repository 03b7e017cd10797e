#!/usr/bin/env bash
# tools/run_benchmarks.sh - build ump_bench (Release) and regenerate BENCHMARKS.md.
#
#   tools/run_benchmarks.sh [extra ump_bench arguments, e.g. --benchmark_filter=rtt]
#
# Environment:
#   UMP_BENCH_REPETITIONS  repetitions per benchmark (default 5); values are medians
#   UMP_BENCH_BUILD_DIR    build directory (default build-bench)
#   CXX                    compiler, honoured on the first configure of the build directory
#
# Writes bench/results/latest.json (raw Google Benchmark output), BENCHMARKS.md at the
# repository root, and bench/results/latency_vs_clients.{png,dat,gp}. The spin floor is also
# measured just before and just after the suite (bench/results/floor_{before,after}.json);
# BENCHMARKS.md sets them next to the suite's own floor row and says whether the VM changed
# state during the run. The suite takes
# a few minutes with 5 repetitions: the default --benchmark_min_time is 0.2 s per run
# (set in bench/bench_main.cpp; pass --benchmark_min_time=... to change it).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

"$root/tools/install_deps.sh" --bench
# The spin-budget experiment (BENCHMARKS.md, "Spin budget") runs with the suite unless
# UMP_BENCH_SPIN_SWEEP is set empty.
export UMP_BENCH_SPIN_SWEEP=${UMP_BENCH_SPIN_SWEEP-1}
[[ -n "$UMP_BENCH_SPIN_SWEEP" ]] || unset UMP_BENCH_SPIN_SWEEP
repetitions=${UMP_BENCH_REPETITIONS:-5}
build_dir=${UMP_BENCH_BUILD_DIR:-build-bench}
results_dir=bench/results
json="$results_dir/latest.json"

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DUMP_BUILD_BENCHMARKS=ON
cmake --build "$build_dir" --target ump_bench -j "$(nproc)"

exe="$build_dir/bench/ump_bench"
if [[ ! -x "$exe" ]]; then
  exe=$(find "$build_dir" -type f -name ump_bench -perm -u+x | head -n 1)
fi
[[ -n "$exe" && -x "$exe" ]] || { echo "run_benchmarks: ump_bench not built" >&2; exit 1; }

cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt" | head -n 1)
compiler=$("${cxx:-c++}" --version 2>/dev/null | head -n 1 || echo "${cxx:-unknown}")

mkdir -p "$results_dir"
# The spin floor just before and just after the suite: on these VMs the cost of a cache-line
# transfer changes from one minute to the next, and the report says whether it did during
# the run (BENCHMARKS.md, "How to read these numbers").
floor_check() {
  "$exe" --benchmark_filter='^floor/spin/' --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_out="$1" --benchmark_out_format=json >/dev/null 2>&1 || echo "run_benchmarks: the floor check failed" >&2
}
floor_check "$results_dir/floor_before.json"
# The console keeps the human-readable table while the run progresses; the file gets
# JSON (--benchmark_out_format=json: --benchmark_format only sets the console's format).
# Write to a temporary file first so a failed run keeps the previous results.
"$exe" \
  --benchmark_repetitions="$repetitions" \
  --benchmark_report_aggregates_only=true \
  --benchmark_out="$json.tmp" \
  --benchmark_out_format=json \
  "$@"
mv "$json.tmp" "$json"
floor_check "$results_dir/floor_after.json"

# Flags come from the JSON context (recorded by bench_main.cpp from the CMake build).
python3 tools/bench_report.py "$json" --compiler "$compiler" --targets \
  --floor-check "$results_dir/floor_before.json" "$results_dir/floor_after.json"
