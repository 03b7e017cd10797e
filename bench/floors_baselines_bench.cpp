// bench/floors_baselines_bench.cpp - registers the floors and the baselines.
//
// Names (Benchmark appends /real_time, /manual_time or /iterations:N):
//   floor/<floor>                                  two threads ping-ponging one word, ns per round trip
//                                                  (spin, atomic_wait, futex, futex_park,
//                                                  futex_spin50_park, futex_yield50_park)
//   rtt/<impl>                                     one client back-to-back, ns per round trip + p50/p99
//   gap/<impl>/gap_us:N, gap/floor_<floor>/gap_us:N
//                                                  request N us after the previous reply (N = 0, 10,
//                                                  50, 75, 100, 200, 500, 1000, 5000), p50/p99
//   rtt_loaded/<impl>                              rtt while one CPU hog per core competes, p50/p99
//   contended/<impl>/threads:{1,2,4,8}             items/s = round trips/s, latency_ns per client
//   pipelined/<impl>                               64 sends then 64 waits, ns per request
//   post/<impl>/producers:{1,2,4}                  items/s = messages/s (impls fifo_lock / fifo_ticket,
//                                                  the one-FIFO designs: ump_fifo_designs_bench.cpp)
//   cost/uncontended_rmw                           one atomic RMW on a private line, ns
// ump's adapters register the same workloads under impl "ump" (ump_*_bench.cpp),
// so tools/bench_report.py pairs rows by workload and parameter.
#include "baselines.hpp"
#include "floors.hpp"
#include "workloads.hpp"

namespace {

// cost/uncontended_rmw: one atomic read-modify-write on a cache line no other thread
// touches (a lock-prefixed instruction on x86). The unit for reading the per-hop
// breakdown in BENCHMARKS.md: a round trip that needs no cross-core transfer still pays
// one of these per RMW in its protocol.
void run_uncontended_rmw(benchmark::State& state) {
  alignas(ump_bench::cache_line_size) std::atomic<std::uint64_t> word{0};
  for (auto _ : state) {
    // ORDERING: acq_rel, as ump's own RMWs; nothing pairs with it (single thread).
    word.fetch_add(1, std::memory_order_acq_rel);
  }
  benchmark::DoNotOptimize(word.load(std::memory_order_relaxed));
}

const bool registered = [] {
  using namespace ump_bench;
  // The gap sweep's floors: spin, park at once, pause-spin 50 us then park, and
  // sched_yield-spin 50 us then park.
  register_floor<spin_pingpong>("spin", true);
  register_floor<atomic_wait_pingpong>("atomic_wait");
  register_floor<futex_pingpong>("futex");
  register_floor<futex_park_pingpong>("futex_park", true);
  register_floor<futex_spin50_park_pingpong>("futex_spin50_park", true);
  register_floor<futex_yield50_park_pingpong>("futex_yield50_park", true);

  register_request_reply<mutex_condvar_promise>("mutex_condvar_promise");
  register_request_reply<moodycamel_promise>("moodycamel_promise");
  register_request_reply<moodycamel_atomic_slot>("moodycamel_atomic_slot");

  register_post<mutex_condvar_post>("mutex_condvar");
  register_post<moodycamel_post>("moodycamel");
  benchmark::RegisterBenchmark("cost/uncontended_rmw", run_uncontended_rmw)->ReportAggregatesOnly(true);
  return true;
}();

}  // namespace
