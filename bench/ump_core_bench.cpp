// ump workloads for the shared drivers in workloads.hpp (rtt, gap, rtt_loaded, contended,
// pipelined, post), plus ump-only measurements: payload sweep, futex calls per round trip,
// CPU time of an idle parked server.
#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <malloc.h>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <time.h>
#include <pthread.h>

#include "workloads.hpp"
#include "ump/detail/park.hpp"
#include "ump/ng.hpp"
#include "ump/ump.hpp"

namespace ump_bench {
namespace {

// How the server thread receives: one request per wait(), or batches of up to 64 per
// wait_many() (the rest of what is queued, taken without waiting again).
enum class receive { one, batch };

// One server thread answering x with x + 1 until every client is gone.
template <class Payload = std::uint64_t, receive How = receive::one>
class ump_impl {
 public:
  using chan_client = ump::client<Payload, Payload>;

  ump_impl() : ump_impl(ump::channel_options{}) {}
  explicit ump_impl(ump::channel_options opts) {
    auto [srv, cli] = ump::channel<Payload, Payload>(opts);
    cli_.emplace(std::move(cli));
    server_ = std::thread([srv = std::move(srv)]() mutable {
      auto answer = [](auto& r) {
        Payload out = r.msg;
        out.front() += 1;
        r.ctx.reply(std::move(out));
      };
      if constexpr (How == receive::one) {
        while (auto r = srv.wait()) answer(*r);
      } else {
        std::vector<typename ump::server<Payload, Payload>::request_type> batch;
        batch.reserve(64);
        while (srv.wait_many(std::back_inserter(batch), 64)) {
          for (auto& r : batch) answer(r);
          batch.clear();
        }
      }
    });
  }
  ump_impl(const ump_impl&) = delete;
  ump_impl& operator=(const ump_impl&) = delete;
  ~ump_impl() {
    cli_.reset();  // the last client: the server's wait() ends with clients_disappeared
    server_.join();
  }

  struct client {
    chan_client c;
    using handle = std::optional<ump::wait_reply<Payload>>;
    std::uint64_t call(std::uint64_t x) {
      Payload p{};
      p.front() = x;
      return c.req(std::move(p))->front();
    }
    void send(handle& h, std::uint64_t x) {
      Payload p{};
      p.front() = x;
      h.emplace(c.req_async(std::move(p)));
    }
    std::uint64_t wait(handle& h) { return h->wait()->front(); }
  };
  client make_client() { return client{*cli_}; }

 private:
  std::optional<chan_client> cli_;
  std::thread server_;
};

using word = std::array<std::uint64_t, 1>;
struct ump_word : ump_impl<word> {
  ump_word() = default;
};
struct ump_word_batch : ump_impl<word, receive::batch> {
  ump_word_batch() = default;
};

// The spin-budget experiment: the same channel with fixed budgets (adaptive off;
// spin_before_yield is kept at min(5 µs, budget)). The default `ump` rows are the adaptive
// 50 µs budget. See BENCHMARKS.md, "Spin budget".
template <int SpinUs>
struct ump_spin : ump_impl<word> {
  static ump::channel_options opts() {
    ump::channel_options o;
    o.waiting.spin = std::chrono::microseconds(SpinUs);
    o.waiting.spin_before_yield = std::chrono::microseconds(SpinUs < 5 ? SpinUs : 5);
    o.waiting.adaptive = false;
    return o;
  }
  ump_spin() : ump_impl<word>(opts()) {}
};

template <int SpinUs>
std::string spin_variant_name() {
  return "ump_spin" + std::to_string(SpinUs) + "us";
}

// The 0 µs variant's gap rows are registered with the default rows (ump parking at once
// is a row of the gap sweep in every run), so it leaves them out here.
template <int SpinUs>
void register_spin_variant() {
  register_request_reply<ump_spin<SpinUs>>(
      spin_variant_name<SpinUs>(),
      {.rtt = true, .gap = SpinUs != 0, .rtt_loaded = true, .contended = true, .pipelined = false});
}

// Bounded channels: the same channel with channel_options::capacity set (0 = unbounded).
// Rows `ump_cap<N>` sit next to the unbounded `ump` rows of the same workload; see
// BENCHMARKS.md, "Bounded channels".
inline constexpr std::uint32_t bounded_capacity = 1024;
inline constexpr std::uint32_t never_full_capacity = (1u << 27) - 1;

inline ump::channel_options capacity_opts(std::uint32_t capacity) {
  ump::channel_options o;
  o.capacity = capacity;
  return o;
}

template <std::uint32_t Capacity>
struct ump_word_cap : ump_impl<word> {
  ump_word_cap() : ump_impl<word>(capacity_opts(Capacity)) {}
};

inline std::string capacity_name(std::uint32_t capacity) { return "ump_cap" + std::to_string(capacity); }

// ng posts: one consumer thread counting what it receives (one per wait(), or in batches
// of up to 64 per wait_many()), on a channel of capacity Capacity (0: unbounded).
template <receive How = receive::one, std::uint32_t Capacity = 0>
class ump_post_impl {
 public:
  ump_post_impl() {
    auto [srv, cli] = ump::ng::channel<std::uint64_t, int, int>(capacity_opts(Capacity));
    cli_.emplace(std::move(cli));
    server_ = std::thread([this, srv = std::move(srv)]() mutable {
      std::uint64_t count = 0;
      if constexpr (How == receive::one) {
        while (auto m = srv.wait()) {
          // Only this thread writes the counter: a plain store, as the baselines' consumers do.
          // ORDERING: release; pairs with consumed()'s acquire load.
          if (m->is_post()) consumed_.store(++count, std::memory_order_release);
        }
      } else {
        std::vector<typename decltype(srv)::message_type> batch;
        batch.reserve(64);
        while (srv.wait_many(std::back_inserter(batch), 64)) {
          count += batch.size();  // only posts are sent here
          batch.clear();
          // ORDERING: release; pairs with consumed()'s acquire load.
          consumed_.store(count, std::memory_order_release);
        }
      }
    });
  }
  ump_post_impl(const ump_post_impl&) = delete;
  ump_post_impl& operator=(const ump_post_impl&) = delete;
  ~ump_post_impl() {
    cli_.reset();
    server_.join();
  }
  struct producer {
    ump::ng::post_client<std::uint64_t, int, int> p;
    void post(std::uint64_t x) { (void)p.post(x); }
  };
  producer make_producer() { return producer{cli_->poster()}; }
  std::uint64_t consumed() const noexcept { return consumed_.load(std::memory_order_acquire); }

 private:
  std::optional<ump::ng::client<std::uint64_t, int, int>> cli_;
  alignas(cache_line_size) std::atomic<std::uint64_t> consumed_{0};
  std::thread server_;
};

// Payload sweep: rtt with an N-byte request and reply.
template <std::size_t Bytes>
void run_payload(benchmark::State& state) {
  using payload = std::array<std::uint64_t, Bytes / 8>;
  ump_impl<payload> impl;
  auto client = impl.make_client();
  std::uint64_t x = 1, wrong = 0;
  for (auto _ : state) {
    wrong += client.call(x) != x + 1;
    ++x;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * Bytes * 2));
  if (wrong) state.SkipWithError("wrong reply");
}

// Futex calls per round trip, back to back and with the client idle ~50 µs between
// requests (the server parks in between).
void run_futex_per_rtt(benchmark::State& state) {
  const bool idle = state.range(0) != 0;
  ump_word impl;
  auto client = impl.make_client();
  for (std::uint64_t i = 0; i < 100; ++i) (void)client.call(i);
  const auto before = ump::detail::read_park_stats();
  std::uint64_t x = 1;
  auto next = bench_clock::now() + idle_pause;
  for (auto _ : state) {
    if (idle) spin_until(next);
    (void)client.call(x++);
    next = bench_clock::now() + idle_pause;
  }
  const auto after = ump::detail::read_park_stats();
  const double n = static_cast<double>(state.iterations());
  state.counters["futex_wait_per_rt"] = static_cast<double>(after.parks - before.parks) / n;
  state.counters["futex_wake_per_rt"] = static_cast<double>(after.wakes - before.wakes) / n;
}

// CPU time burnt by a server parked on an empty channel, per second of wall time.
void run_idle_server_cpu(benchmark::State& state) {
  auto [srv, cli] = ump::channel<int, int>();
  std::atomic<clockid_t> cid{};
  std::atomic<bool> have_cid{false};
  std::thread server([&, srv = std::move(srv)]() mutable {
    clockid_t c;
    pthread_getcpuclockid(pthread_self(), &c);
    cid.store(c, std::memory_order_relaxed);
    // ORDERING: release; pairs with the acquire load below.
    have_cid.store(true, std::memory_order_release);
    while (auto r = srv.wait()) r->ctx.reply(r->msg);
  });
  while (!have_cid.load(std::memory_order_acquire)) std::this_thread::yield();
  (void)cli.req(1);
  double cpu_ns = 0, wall_ns = 0;
  for (auto _ : state) {
    timespec a{}, b{};
    clock_gettime(cid.load(std::memory_order_relaxed), &a);
    const auto w0 = bench_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the server idles meanwhile
    clock_gettime(cid.load(std::memory_order_relaxed), &b);
    wall_ns += std::chrono::duration<double, std::nano>(bench_clock::now() - w0).count();
    cpu_ns += (b.tv_sec - a.tv_sec) * 1e9 + static_cast<double>(b.tv_nsec - a.tv_nsec);
  }
  state.counters["server_cpu_ms_per_s"] = cpu_ns / wall_ns * 1000.0;
  { auto gone = std::move(cli); }
  server.join();
}

// Many channels: actor-style programs keep one channel per object. `channels/idle_bytes`
// makes 10,000 channels (server and client alive, nothing sent) and reports the heap they
// hold (glibc's mallinfo2: bytes in use, allocator headers included) per channel;
// `channels/create_destroy` times making and dropping one channel.
void run_idle_channel_bytes(benchmark::State& state) {
  constexpr int n = 10000;
  double per_channel = 0;
  for (auto _ : state) {
    std::vector<std::pair<ump::server<word, word>, ump::client<word, word>>> v;
    v.reserve(n);
    const std::size_t before = mallinfo2().uordblks;
    for (int i = 0; i < n; ++i) v.push_back(ump::channel<word, word>());
    per_channel = static_cast<double>(mallinfo2().uordblks - before) / n;
  }
  state.counters["bytes_per_idle_channel"] = per_channel;
}

void run_channel_create_destroy(benchmark::State& state) {
  for (auto _ : state) {
    auto ch = ump::channel<word, word>();
    benchmark::DoNotOptimize(ch);
  }
}

const bool registered = [] {
  register_request_reply<ump_word>("ump");
  // The gap sweep's second ump row: waiting.spin = 0, every wait parks at once.
  register_gap<ump_spin<0>>(spin_variant_name<0>());
  register_post<ump_post_impl<>>("ump");
  // Batch receive: the server takes up to 64 per wait_many() (issue 13's comparison).
  register_post<ump_post_impl<receive::batch>>("ump_batch");
  register_request_reply<ump_word_batch>(
      "ump_batch", {.rtt = false, .gap = false, .rtt_loaded = false, .contended = true, .pipelined = true});
  // Bounded channels: post at 1/2/4 producers and rtt with capacity 1024, next to the
  // unbounded `ump` rows (tools/bench_report.py puts them side by side with their ratio).
  register_post<ump_post_impl<receive::one, bounded_capacity>>(capacity_name(bounded_capacity));
  // The largest capacity, which these runs never reach: the room accounting alone, without
  // a sender ever waiting (so the cap1024 rows' extra cost splits into counting and waiting).
  register_post<ump_post_impl<receive::one, never_full_capacity>>(capacity_name(never_full_capacity));
  register_request_reply<ump_word_cap<bounded_capacity>>(
      capacity_name(bounded_capacity),
      {.rtt = true, .gap = false, .rtt_loaded = false, .contended = false, .pipelined = false});
  if (std::getenv("UMP_BENCH_SPIN_SWEEP") != nullptr) {
    register_spin_variant<0>();
    register_spin_variant<2>();
    register_spin_variant<10>();
    register_spin_variant<50>();
    register_spin_variant<200>();
  }
  benchmark::RegisterBenchmark("payload/ump/bytes:8", run_payload<8>)->UseRealTime()->ReportAggregatesOnly(true);
  benchmark::RegisterBenchmark("payload/ump/bytes:64", run_payload<64>)->UseRealTime()->ReportAggregatesOnly(true);
  benchmark::RegisterBenchmark("payload/ump/bytes:256", run_payload<256>)->UseRealTime()->ReportAggregatesOnly(true);
  benchmark::RegisterBenchmark("payload/ump/bytes:1024", run_payload<1024>)->UseRealTime()->ReportAggregatesOnly(true);
  benchmark::RegisterBenchmark("payload/ump/bytes:4096", run_payload<4096>)->UseRealTime()->ReportAggregatesOnly(true);
  benchmark::RegisterBenchmark("cost/ump_futex_per_rtt", run_futex_per_rtt)
      ->ArgName("idle")
      ->Arg(0)
      ->Arg(1)
      ->Iterations(2000)
      ->UseRealTime()
      ->ReportAggregatesOnly(true);
  benchmark::RegisterBenchmark("cost/ump_idle_server_cpu", run_idle_server_cpu)
      ->Iterations(5)
      ->UseRealTime()
      ->ReportAggregatesOnly(true);
  benchmark::RegisterBenchmark("channels/idle_bytes", run_idle_channel_bytes)
      ->Iterations(3)
      ->ReportAggregatesOnly(true);
  benchmark::RegisterBenchmark("channels/create_destroy", run_channel_create_destroy)->ReportAggregatesOnly(true);
  return true;
}();

}  // namespace
}  // namespace ump_bench
