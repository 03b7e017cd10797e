// bench/bench_util.hpp - measurement helpers shared by the floors, the baselines and
// the workload drivers: clock, allocation counting, pause/futex primitives, latency
// percentiles. Nothing here depends on ump.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ump_bench {

// Our own constant: clang 14 with libstdc++ lacks hardware_destructive_interference_size.
inline constexpr std::size_t cache_line_size = 64;
// Words that two threads write independently are kept this far apart: Intel's spatial
// (adjacent-line) prefetcher pulls lines in 128-byte pairs, so two hot words on
// neighbouring 64-byte lines still move together.
inline constexpr std::size_t prefetch_pair_size = 128;

using bench_clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Allocation counting. Global operator new/delete are replaced in exactly one
// translation unit, bench/alloc_counter.cpp; these read its counters. Counts are
// process-wide (every thread), so a server's allocations count too.
// ---------------------------------------------------------------------------
[[nodiscard]] std::uint64_t alloc_count() noexcept;
[[nodiscard]] std::uint64_t free_count() noexcept;

// Reports `allocs_per_req` = allocations between construction and report() / requests, and
// `allocs` = the allocations themselves, so that runs of different lengths show whether a
// nonzero count grows with the run (a cost per request) or stays put (a bounded warm-up).
class alloc_meter {
 public:
  alloc_meter() noexcept : start_{alloc_count()} {}

  void report(benchmark::State& state, std::int64_t requests) const {
    const std::uint64_t allocs = alloc_count() - start_;  // read before the map insert allocates
    state.counters["allocs_per_req"] = requests > 0 ? static_cast<double>(allocs) / static_cast<double>(requests) : 0.0;
    state.counters["allocs"] = static_cast<double>(allocs);
  }

 private:
  std::uint64_t start_;
};

// ---------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Busy-waits (never sleeps) until `deadline`, so the thread stays on its CPU and a
// peer that went idle meanwhile really has to be woken.
inline void spin_until(bench_clock::time_point deadline) noexcept {
  while (bench_clock::now() < deadline) {
    for (int i = 0; i < 16; ++i) cpu_relax();
  }
}

// Raw futex calls on a std::atomic<uint32_t> (same size and representation).
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
  // Returns at once (EAGAIN) if word != expected; spurious returns are allowed.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

inline void futex_wake_one(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

// Latency percentiles from individually timed operations. Storage is reserved up
// front so recording never allocates inside a timed loop; samples beyond the
// capacity are dropped.
class latency_recorder {
 public:
  explicit latency_recorder(std::size_t capacity) { samples_.reserve(std::max<std::size_t>(capacity, 1)); }

  void record(bench_clock::duration d) noexcept {
    if (samples_.size() < samples_.capacity()) samples_.push_back(d.count());
  }

  // Sets counters <prefix>p50_ns and <prefix>p99_ns (nearest-rank percentiles).
  void report(benchmark::State& state, const std::string& prefix = "") {
    if (samples_.empty()) return;
    state.counters[prefix + "p50_ns"] = percentile_ns(0.50);
    state.counters[prefix + "p99_ns"] = percentile_ns(0.99);
  }

 private:
  double percentile_ns(double q) {
    const auto n = samples_.size();
    auto rank = static_cast<std::size_t>(q * static_cast<double>(n) + 0.999999);
    rank = std::clamp<std::size_t>(rank, 1, n) - 1;
    std::nth_element(samples_.begin(), samples_.begin() + static_cast<std::ptrdiff_t>(rank), samples_.end());
    const auto ticks = bench_clock::duration(samples_[rank]);
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(ticks).count());
  }

  std::vector<bench_clock::duration::rep> samples_;
};

}  // namespace ump_bench
