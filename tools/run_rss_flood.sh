#!/usr/bin/env bash
# tools/run_rss_flood.sh - resident memory of a flooded channel, bounded against unbounded.
#
#   tools/run_rss_flood.sh [seconds (default 60)] [extra ump_rss_flood arguments]
#
# Builds ump_rss_flood (bench/rss_flood.cpp), runs it twice for the given duration, with
# --capacity $UMP_FLOOD_CAPACITY (default 1024) and with --capacity 0 (unbounded), and
# draws both resident-set curves with tools/plot_rss.py. The unbounded run stops early once
# the process passes --max-rss-mib (default 4096 MiB) or the machine's MemAvailable falls
# under --min-avail-mib (default 2048 MiB); the CSV and the chart say so.
#
# Environment:
#   UMP_BENCH_BUILD_DIR   build directory (default build-bench, shared with run_benchmarks.sh)
#   UMP_FLOOD_CAPACITY    capacity of the bounded run (default 1024)
#
# Writes bench/results/rss_flood_cap<N>.csv, bench/results/rss_flood_unbounded.csv and
# bench/results/rss_flood.svg.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

seconds=${1:-60}
shift || true
capacity=${UMP_FLOOD_CAPACITY:-1024}
build_dir=${UMP_BENCH_BUILD_DIR:-build-bench}
results_dir=bench/results

if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DUMP_BUILD_BENCHMARKS=ON
fi
cmake --build "$build_dir" --target ump_rss_flood -j "$(nproc)"
exe="$build_dir/bench/ump_rss_flood"
[[ -x "$exe" ]] || { echo "run_rss_flood: $exe not built" >&2; exit 1; }

mkdir -p "$results_dir"
bounded_csv="$results_dir/rss_flood_cap$capacity.csv"
unbounded_csv="$results_dir/rss_flood_unbounded.csv"
echo "run_rss_flood: capacity $capacity, $seconds s" >&2
"$exe" --capacity "$capacity" --seconds "$seconds" "$@" > "$bounded_csv"
echo "run_rss_flood: unbounded, $seconds s (stops early past the memory guard)" >&2
"$exe" --capacity 0 --seconds "$seconds" "$@" > "$unbounded_csv"
python3 tools/plot_rss.py "$unbounded_csv" "$bounded_csv" --out "$results_dir/rss_flood.svg"
for f in "$bounded_csv" "$unbounded_csv"; do
  echo "== $f: last row and notes" >&2
  grep -v '^#' "$f" | tail -n 1 >&2
  grep '^#' "$f" | tail -n +2 >&2 || true
done
