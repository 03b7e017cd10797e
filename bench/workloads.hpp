// bench/workloads.hpp - the workload drivers, written once against small implementation concepts.
//
// The drivers (rtt, gap, rtt_loaded, contended, pipelined, post) run any implementation that
// satisfies the concepts below, so the floors (floors.hpp), the baselines (baselines.hpp,
// mpsc_baselines.hpp) and ump's adapters (ump_core_bench.cpp) register the very same
// workloads under the same names: `<workload>/<impl>[/param:N]`. Measurement helpers
// (latency percentiles, allocations per request) are in bench_util.hpp.
//
// Implementation concepts (checked by the concepts below)
//   request/reply impl `I`:
//     I()                         starts the server thread; never inside a timed region
//     ~I()                        stops and joins it; every accepted request is answered
//     I::client                   one per client thread, made by `impl.make_client()` on
//                                 the thread that uses it
//     client.call(x) -> uint64_t  one blocking round trip; must return x + 1
//   pipelining impl (additionally):
//     I::client::handle           caller-owned storage for one in-flight request; it must
//                                 not move while the request is in flight
//     client.send(handle&, x), client.wait(handle&) -> uint64_t
//   post impl `P`:
//     P::producer, impl.make_producer(), producer.post(x)   (x != post_stop_value)
//     impl.consumed() -> uint64_t  messages the consumer has finished with so far
//
// Every server thread is started in the implementation's constructor, which the
// drivers run before the timed loop, and joined in its destructor, after it.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"

namespace ump_bench {

// Reserved by the post drivers' contract: no producer posts it (a baseline may use it as
// its consumer's stop sentinel).
inline constexpr std::uint64_t post_stop_value = ~std::uint64_t{0};

// ===========================================================================
// Concepts for the drivers.
// ===========================================================================
template <class I>
concept request_reply_impl = std::default_initializable<I> && requires(I& impl) {
  {impl.make_client()};
  { impl.make_client().call(std::uint64_t{}) } -> std::convertible_to<std::uint64_t>;
};

template <class I>
concept pipelining_impl = request_reply_impl<I> && requires(I& impl) {
  typename I::client::handle;
  requires std::default_initializable<typename I::client::handle>;
  requires requires(typename I::client & c, typename I::client::handle & h) {
    c.send(h, std::uint64_t{});
    { c.wait(h) } -> std::convertible_to<std::uint64_t>;
  };
};

template <class P>
concept post_impl = std::default_initializable<P> && requires(P& impl, const P& cimpl) {
  {impl.make_producer()};
  impl.make_producer().post(std::uint64_t{});
  { cimpl.consumed() } -> std::convertible_to<std::uint64_t>;
};

// ===========================================================================
// Workload drivers. Each constructs the implementation (starting its server)
// before the timed loop and destroys it after.
// ===========================================================================
inline constexpr int rtt_sample_every = 8;  // p50/p99 pass: 1 sample per 8 timed round trips
// The gap sweep: gaps in µs and round trips per gap. Fewer round trips for long gaps keep
// one implementation's sweep near 4 s (sum of gap x round trips, plus the round trips);
// 200 round trips at 5 ms still leave 2 samples above p99.
// 75 µs sits between one and two default spin budgets: requests spaced just over the budget.
inline constexpr std::int64_t gap_sweep[][2] = {{0, 4000},   {10, 4000},  {50, 4000},  {75, 4000}, {100, 4000},
                                                {200, 3000}, {500, 1500}, {1000, 800}, {5000, 200}};
// Other ump-side measurements with a server that has parked between requests.
inline constexpr auto idle_pause = std::chrono::microseconds{50};
inline constexpr std::size_t pipeline_depth = 64;
inline constexpr std::int64_t contended_chunk = 16;  // tickets taken per fetch_sub
inline constexpr int contended_clients[] = {1, 2, 4, 8};
inline constexpr int post_producers[] = {1, 2, 4};
// Warm-up before allocations are counted (contended, pipelined, post): each client or
// producer first runs this many round trips or posts, untimed, and the meter starts only
// when all of them are done (and, for post, consumed). Pools and queue blocks grow to what
// the workload needs during warm-up; allocs_per_req then counts only what a channel
// allocates in steady state, which ump's target says is nothing.
inline constexpr std::int64_t warmup_round_trips = 2000;
inline constexpr std::int64_t warmup_pipelines = 64;
inline constexpr std::int64_t warmup_posts = 100000;

// rtt: one client (the benchmark thread), back-to-back round trips. The reported
// time is the mean over the timed loop, which reads no clock per round trip. After the
// loop (untimed), a pass of iterations / rtt_sample_every round trips, each timed on its
// own, gives p50/p99; those include one clock read (~25 ns here) per sample.
template <request_reply_impl I>
void run_rtt(benchmark::State& state) {
  I impl;
  auto client = impl.make_client();
  for (std::uint64_t i = 0; i < 100; ++i) (void)client.call(i);  // warm caches and thread
  std::uint64_t x = 1000;
  std::uint64_t wrong = 0;
  alloc_meter allocs;
  for (auto _ : state) {
    wrong += client.call(x) != x + 1;
    ++x;
  }
  allocs.report(state, state.iterations());
  const auto samples = static_cast<std::size_t>(state.iterations() / rtt_sample_every) + 1;
  latency_recorder latencies{samples};
  for (std::size_t i = 0; i < samples; ++i, ++x) {
    const auto t0 = bench_clock::now();
    const std::uint64_t reply = client.call(x);
    latencies.record(bench_clock::now() - t0);
    wrong += reply != x + 1;
  }
  latencies.report(state);
  if (wrong != 0) state.SkipWithError("wrong reply");
}

// rtt_loaded: rtt while one busy "hog" thread per hardware thread competes for every
// core (plain CPU loops at normal priority, started before and stopped after the timed
// loop). Client and server threads now outnumber the cores and get preempted: this is how
// a wait strategy behaves on a machine that is busy with other work.
class cpu_hogs {
 public:
  cpu_hogs() {
    const unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        std::uint64_t x = 0;
        // ORDERING: relaxed; only a stop request, no data.
        while (!stop_.load(std::memory_order_relaxed)) {
          for (int k = 0; k < 1024; ++k) x = x * 6364136223846793005u + 1442695040888963407u;
          benchmark::DoNotOptimize(x);
        }
      });
    }
  }
  ~cpu_hogs() {
    // ORDERING: relaxed; the joins below synchronise.
    stop_.store(true, std::memory_order_relaxed);
    for (auto& t : threads_) t.join();
  }
  cpu_hogs(const cpu_hogs&) = delete;
  cpu_hogs& operator=(const cpu_hogs&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

template <request_reply_impl I>
void run_rtt_loaded(benchmark::State& state) {
  I impl;
  auto client = impl.make_client();
  for (std::uint64_t i = 0; i < 100; ++i) (void)client.call(i);
  cpu_hogs hogs;
  latency_recorder latencies{static_cast<std::size_t>(state.max_iterations)};
  std::uint64_t x = 1000;
  std::uint64_t wrong = 0;
  for (auto _ : state) {
    const auto t0 = bench_clock::now();
    const std::uint64_t reply = client.call(x);
    latencies.record(bench_clock::now() - t0);
    wrong += reply != x + 1;
    ++x;
  }
  latencies.report(state);
  if (wrong != 0) state.SkipWithError("wrong reply");
}

// gap: each request is sent gap_us (state.range(0)) after the client saw the previous
// reply, so a server with a spin budget shorter than the gap has parked and pays a
// wake-up. The pause is the same in every row and at every gap, 0 included: spin_until()
// busy-waits on steady_clock with pause instructions, never sleeping, so the client keeps
// its CPU and no row's pause changes scheduling differently from another's. Manual time:
// only the round trip is timed (time = mean round trip); p50_ns/p99_ns/samples counters.
template <request_reply_impl I>
void run_gap(benchmark::State& state) {
  const auto gap = std::chrono::microseconds{state.range(0)};
  I impl;
  auto client = impl.make_client();
  for (std::uint64_t i = 0; i < 100; ++i) (void)client.call(i);
  latency_recorder latencies{static_cast<std::size_t>(state.max_iterations)};
  std::uint64_t x = 1000;
  std::uint64_t wrong = 0;
  auto next = bench_clock::now() + gap;
  for (auto _ : state) {
    spin_until(next);
    const auto t0 = bench_clock::now();
    const std::uint64_t reply = client.call(x);
    const auto t1 = bench_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    latencies.record(t1 - t0);
    wrong += reply != x + 1;
    ++x;
    next = t1 + gap;
  }
  latencies.report(state);
  state.counters["samples"] = static_cast<double>(state.iterations());
  if (wrong != 0) state.SkipWithError("wrong reply");
}

// pipelined: pipeline_depth sends, then as many waits; time per request.
template <pipelining_impl I>
void run_pipelined(benchmark::State& state) {
  I impl;
  auto client = impl.make_client();
  std::array<typename I::client::handle, pipeline_depth> handles;
  std::uint64_t x = 1000;
  std::uint64_t wrong = 0;
  for (std::int64_t round = 0; round < warmup_pipelines; ++round, x += pipeline_depth) {
    for (std::size_t i = 0; i < pipeline_depth; ++i) client.send(handles[i], x + i);
    for (std::size_t i = 0; i < pipeline_depth; ++i) wrong += client.wait(handles[i]) != x + i + 1;
  }
  alloc_meter allocs;
  while (state.KeepRunningBatch(pipeline_depth)) {
    for (std::size_t i = 0; i < pipeline_depth; ++i) client.send(handles[i], x + i);
    for (std::size_t i = 0; i < pipeline_depth; ++i) wrong += client.wait(handles[i]) != x + i + 1;
    x += pipeline_depth;
  }
  allocs.report(state, state.iterations());
  state.SetItemsProcessed(state.iterations());
  if (wrong != 0) state.SkipWithError("wrong reply");
}

// Runs `body.prepare(index)` at once and `body.run(index)` once on each of n threads
// created before the timed region, holding them at a gate in between; wait_prepared()
// blocks until every prepare() has returned, release() opens the gate, wait_all() blocks
// (parked, no spinning: the machine has two vCPUs) until every run() has returned.
class gated_threads {
 public:
  template <class Body>
  gated_threads(int n, Body body) : n_{static_cast<std::uint32_t>(n)} {
    threads_.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, body, i]() mutable {
        body.prepare(i);
        // ORDERING: acq_rel; release publishes prepare()'s effects to wait_prepared().
        if (prepared_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) prepared_.notify_one();
        // ORDERING: acquire; pairs with the release store in release()/~gated_threads.
        gate_.wait(closed, std::memory_order_acquire);
        // ORDERING: acquire; same partner.
        if (gate_.load(std::memory_order_acquire) == open) body.run(i);
        // ORDERING: acq_rel; release publishes this body's effects to wait_all(),
        // acquire is harmless.
        if (finished_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) finished_.notify_one();
      });
    }
  }
  ~gated_threads() {
    // ORDERING: relaxed; only reached if release() never ran.
    if (gate_.load(std::memory_order_relaxed) == closed) {
      // ORDERING: release; pairs with the acquire wait in the thread body.
      gate_.store(cancelled, std::memory_order_release);
      gate_.notify_all();
    }
    for (auto& t : threads_) t.join();
  }
  gated_threads(const gated_threads&) = delete;
  gated_threads& operator=(const gated_threads&) = delete;

  void release() noexcept {
    // ORDERING: release; pairs with the acquire wait in the thread body.
    gate_.store(open, std::memory_order_release);
    gate_.notify_all();
  }
  void wait_prepared() noexcept { wait_for(prepared_); }
  void wait_all() noexcept { wait_for(finished_); }

 private:
  void wait_for(std::atomic<std::uint32_t>& count) noexcept {
    // ORDERING: acquire; pairs with the acq_rel fetch_add of the last thread.
    for (std::uint32_t f = count.load(std::memory_order_acquire); f != n_; f = count.load(std::memory_order_acquire)) {
      count.wait(f, std::memory_order_acquire);
    }
  }

  static constexpr std::uint32_t closed = 0, open = 1, cancelled = 2;
  std::uint32_t n_;
  alignas(cache_line_size) std::atomic<std::uint32_t> gate_{closed};
  alignas(cache_line_size) std::atomic<std::uint32_t> prepared_{0};
  alignas(cache_line_size) std::atomic<std::uint32_t> finished_{0};
  std::vector<std::thread> threads_;
};

// contended: n client threads, one outstanding request each, sharing one server.
//
// Why manual client threads and not Benchmark's ->Threads(n): ->Threads gives
// every thread the same fixed iteration count, so the run lasts as long as the
// unluckiest client (on 2 vCPUs with up to 8 clients, a queue or a scheduler
// that is unfair stretches the run and understates throughput), and the server
// would have to be started by thread 0 inside the barrier dance. Here the client
// threads (and their tokens/slots) are created before the timed region, the
// iterations are a shared pool of tickets taken contended_chunk at a time, and
// the time is the wall time until the pool is drained: items/s is the aggregate
// round-trip rate, latency_ns = wall time * n / round trips is the mean round
// trip seen by one client.
template <request_reply_impl I>
void run_contended(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  I impl;
  alignas(cache_line_size) std::atomic<std::int64_t> tickets{0};
  std::atomic<std::uint64_t> wrong{0};

  struct body_t {
    I* impl;
    std::atomic<std::int64_t>* tickets;
    std::atomic<std::uint64_t>* wrong;
    std::vector<std::unique_ptr<typename I::client>>* clients;
    void prepare(int i) {
      // new-expression from a prvalue: no move needed, clients may be immovable.
      auto& slot = (*clients)[static_cast<std::size_t>(i)];
      slot.reset(new typename I::client(impl->make_client()));
      auto& c = *slot;
      std::uint64_t x = std::uint64_t(i) << 40;
      std::uint64_t bad = 0;
      for (std::int64_t k = 0; k < warmup_round_trips; ++k, ++x) bad += c.call(x) != x + 1;
      // ORDERING: relaxed; read after wait_all(), which acquires.
      if (bad != 0) wrong->fetch_add(bad, std::memory_order_relaxed);
    }
    void run(int i) {
      auto& c = *(*clients)[static_cast<std::size_t>(i)];
      std::uint64_t x = (std::uint64_t(i) << 40) + warmup_round_trips;
      std::uint64_t bad = 0;
      for (;;) {
        // ORDERING: relaxed; a pure counter, results are published by gated_threads.
        const std::int64_t left = tickets->fetch_sub(contended_chunk, std::memory_order_relaxed);
        if (left <= 0) break;
        for (std::int64_t k = std::min(left, contended_chunk); k > 0; --k, ++x) {
          bad += c.call(x) != x + 1;
        }
      }
      // ORDERING: relaxed; read after wait_all(), which acquires.
      if (bad != 0) wrong->fetch_add(bad, std::memory_order_relaxed);
    }
  };
  // Clients are made on their own threads (tokens, thread-local state) but must be
  // destroyed before impl; the vector outlives the threads, impl outlives the vector.
  std::vector<std::unique_ptr<typename I::client>> clients(static_cast<std::size_t>(n));
  {
    gated_threads crew{n, body_t{&impl, &tickets, &wrong, &clients}};
    crew.wait_prepared();  // clients made and warmed up
    alloc_meter allocs;
    bench_clock::duration elapsed{};
    while (state.KeepRunningBatch(state.max_iterations)) {
      // ORDERING: relaxed; published by the release in crew.release().
      tickets.store(state.max_iterations, std::memory_order_relaxed);
      const auto t0 = bench_clock::now();
      crew.release();
      crew.wait_all();
      elapsed = bench_clock::now() - t0;
    }
    allocs.report(state, state.iterations());
    state.SetItemsProcessed(state.iterations());
    if (state.iterations() > 0) {
      state.counters["latency_ns"] =
          std::chrono::duration<double, std::nano>(elapsed).count() * n / static_cast<double>(state.iterations());
    }
  }
  clients.clear();
  // ORDERING: relaxed; the client threads have been joined.
  if (wrong.load(std::memory_order_relaxed) != 0) state.SkipWithError("wrong reply");
}

// post: n producer threads share the iterations equally and post as fast as they
// can; the timed region ends when the consumer has consumed every message. The
// benchmark thread parks while producers run and only polls the consumer's
// counter (sleeping between polls) for the tail.
template <post_impl P>
void run_post(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  P impl;
  std::int64_t quota_each = 0;
  std::int64_t quota_first = 0;

  struct body_t {
    P* impl;
    const std::int64_t* quota_each;
    const std::int64_t* quota_first;
    std::vector<std::unique_ptr<typename P::producer>>* producers;
    void prepare(int i) {
      auto& slot = (*producers)[static_cast<std::size_t>(i)];
      slot.reset(new typename P::producer(impl->make_producer()));
      std::uint64_t x = std::uint64_t(i) << 40;
      for (std::int64_t k = 0; k < warmup_posts; ++k) slot->post(x++);
    }
    void run(int i) {
      auto& p = *(*producers)[static_cast<std::size_t>(i)];
      const std::int64_t quota = i == 0 ? *quota_first : *quota_each;
      std::uint64_t x = (std::uint64_t(i) << 40) + warmup_posts;
      for (std::int64_t k = 0; k < quota; ++k) p.post(x++);
    }
  };
  std::vector<std::unique_ptr<typename P::producer>> producers(static_cast<std::size_t>(n));
  {
    gated_threads crew{n, body_t{&impl, &quota_each, &quota_first, &producers}};
    crew.wait_prepared();  // producers made, warm-up posted
    const auto warmup_total = static_cast<std::uint64_t>(warmup_posts) * static_cast<std::uint64_t>(n);
    while (impl.consumed() < warmup_total) std::this_thread::sleep_for(std::chrono::microseconds{10});
    alloc_meter allocs;
    while (state.KeepRunningBatch(state.max_iterations)) {
      const auto total = static_cast<std::uint64_t>(state.max_iterations);
      const std::uint64_t target = impl.consumed() + total;
      quota_each = state.max_iterations / n;  // published by crew.release()
      quota_first = state.max_iterations - quota_each * (n - 1);
      crew.release();
      crew.wait_all();
      while (impl.consumed() < target) std::this_thread::sleep_for(std::chrono::microseconds{10});
    }
    allocs.report(state, state.iterations());
    state.SetItemsProcessed(state.iterations());
  }
  producers.clear();
}

// ===========================================================================
// Registration. Names follow `<workload>/<impl>[/<param>:<n>]`; Benchmark appends
// /real_time, /manual_time or /iterations:N, which tools/bench_report.py strips.
// Repetitions come from --benchmark_repetitions; with more than one, only the
// aggregates (mean, median, stddev, cv) are reported.
// ===========================================================================

// gap/<impl>/gap_us:N for every gap of gap_sweep.
template <request_reply_impl I>
void register_gap(const std::string& impl_name) {
  for (const auto& [gap_us, iterations] : gap_sweep) {
    benchmark::RegisterBenchmark(("gap/" + impl_name).c_str(), run_gap<I>)
        ->ArgName("gap_us")
        ->Arg(gap_us)
        ->UseManualTime()
        ->Iterations(iterations)
        ->ReportAggregatesOnly(true);
  }
}

// floor/<name> (back-to-back round trip) and, with gap, gap/floor_<name>/gap_us:N.
template <request_reply_impl I>
void register_floor(const std::string& name, bool gap = false) {
  benchmark::RegisterBenchmark(("floor/" + name).c_str(), run_rtt<I>)->UseRealTime()->ReportAggregatesOnly(true);
  if (gap) register_gap<I>("floor_" + name);
}

struct request_reply_workloads {
  bool rtt = true;
  bool gap = true;
  bool rtt_loaded = true;
  bool contended = true;
  bool pipelined = true;
};

// rtt/<impl>, gap/<impl>/gap_us:N, rtt_loaded/<impl>, contended/<impl>/threads:N,
// pipelined/<impl>.
template <request_reply_impl I>
void register_request_reply(const std::string& impl_name, request_reply_workloads w = {}) {
  if (w.rtt) {
    benchmark::RegisterBenchmark(("rtt/" + impl_name).c_str(), run_rtt<I>)->UseRealTime()->ReportAggregatesOnly(true);
  }
  if (w.gap) register_gap<I>(impl_name);
  if (w.rtt_loaded) {
    benchmark::RegisterBenchmark(("rtt_loaded/" + impl_name).c_str(), run_rtt_loaded<I>)
        ->UseRealTime()
        ->ReportAggregatesOnly(true);
  }
  if (w.contended) {
    auto* b = benchmark::RegisterBenchmark(("contended/" + impl_name).c_str(), run_contended<I>);
    b->ArgName("threads")->UseRealTime()->ReportAggregatesOnly(true);
    for (int n : contended_clients) b->Arg(n);
  }
  if constexpr (pipelining_impl<I>) {
    if (w.pipelined) {
      benchmark::RegisterBenchmark(("pipelined/" + impl_name).c_str(), run_pipelined<I>)
          ->UseRealTime()
          ->ReportAggregatesOnly(true);
    }
  }
}

// post/<impl>/producers:N.
template <post_impl P>
void register_post(const std::string& impl_name) {
  auto* b = benchmark::RegisterBenchmark(("post/" + impl_name).c_str(), run_post<P>);
  b->ArgName("producers")->UseRealTime()->ReportAggregatesOnly(true);
  for (int n : post_producers) b->Arg(n);
}

}  // namespace ump_bench
