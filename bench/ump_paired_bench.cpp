// Paired measurements: ump and its references timed by the same two threads, in turns.
//
// On the 2-vCPU VMs this suite runs on, the cost of moving a cache line between the two vCPUs
// changes from one minute to the next: the spin floor reads about 30, 65 or 320 ns, as the
// hypervisor places the vCPUs (BENCHMARKS.md, "Paired runs"). A row measured in one minute
// and its reference measured in the next can differ by 5x for reasons that have nothing to do
// with either. Here they are timed by the same two threads in alternating blocks a fraction of
// a millisecond long, so the blocks of one triple share the VM's state, and each ratio is
// taken within a triple.
//
//   rtt_paired/ump   blocks of `paired_block` back-to-back round trips, in turn:
//                      ump        client.req() / server.wait() + reply (the rtt row's code path)
//                      spin       one word ping-ponged, both sides pause-spinning (floor/spin)
//                      slot       moodycamel::ConcurrentQueue with a producer token, and an
//                                 atomic reply slot (the queue ump is built on; the server
//                                 spins on it, as moodycamel_atomic_slot does back to back)
//                    counters: ump_ns, spin_ns, slot_ns (median per round trip over the block
//                    triples), ump_over_spin and ump_over_slot (medians of the per-triple ratios).
//                    The reported time is ump's per round trip.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include <concurrentqueue/concurrentqueue.h>

#include "bench_util.hpp"
#include "ump/ump.hpp"

namespace ump_bench {
namespace {

constexpr int paired_block = 256;     // round trips per block: about 20-250 us each here
constexpr int paired_triples = 1500;  // per run: 0.2 s to 1 s, by the placement

struct alignas(prefetch_pair_size) reply_slot {
  std::atomic<std::uint32_t> ready{0};
  std::uint64_t value = 0;
  std::uint64_t reply = 0;
};

class paired_rig {
 public:
  paired_rig() {
    auto [srv, cli] = ump::channel<std::uint64_t, std::uint64_t>();
    cli_.emplace(std::move(cli));
    server_ = std::thread([this, srv = std::move(srv)]() mutable { serve(srv); });
  }
  paired_rig(const paired_rig&) = delete;
  paired_rig& operator=(const paired_rig&) = delete;
  ~paired_rig() {
    // The server is at the start of a ump block (every triple is run whole): the last
    // client's drop ends its wait() with clients_disappeared.
    cli_.reset();
    server_.join();
  }

  // One block of each kind, in the server's order; returns the three block times.
  struct triple {
    bench_clock::duration ump, spin, slot;
  };
  triple run_triple(std::uint64_t& x, std::uint64_t& wrong) {
    triple t{};
    auto t0 = bench_clock::now();
    for (int k = 0; k < paired_block; ++k, ++x) wrong += *cli_->req(x) != x + 1;
    auto t1 = bench_clock::now();
    t.ump = t1 - t0;
    for (int k = 0; k < paired_block; ++k) {
      const std::uint32_t sent = last_word_ + 1;
      // ORDERING: release; pairs with the server's acquire load in the spin block.
      word_.store(sent, std::memory_order_release);
      std::uint32_t seen;
      // ORDERING: acquire; pairs with the server's release store of the answer.
      while ((seen = word_.load(std::memory_order_acquire)) == sent) cpu_relax();
      wrong += seen != sent + 1;
      last_word_ = seen;
    }
    t0 = bench_clock::now();
    t.spin = t0 - t1;
    for (int k = 0; k < paired_block; ++k, ++x) {
      slot_.value = x;
      // ORDERING: relaxed; published by the enqueue (release inside moodycamel), which the
      // server's dequeue acquires.
      slot_.ready.store(0, std::memory_order_relaxed);
      queue_.enqueue(token_, &slot_);
      // ORDERING: acquire; pairs with the server's release store of ready.
      while (slot_.ready.load(std::memory_order_acquire) == 0) cpu_relax();
      wrong += slot_.reply != x + 1;
    }
    t.slot = bench_clock::now() - t0;
    return t;
  }

 private:
  void serve(ump::server<std::uint64_t, std::uint64_t>& srv) {
    moodycamel::ConsumerToken consumer{queue_};
    std::uint32_t last = 0;
    for (;;) {
      for (int k = 0; k < paired_block; ++k) {
        auto r = srv.wait();
        if (!r) return;  // clients_disappeared: the benchmark is over
        r->ctx.reply(r->msg + 1);
      }
      for (int k = 0; k < paired_block; ++k) {
        std::uint32_t seen;
        // ORDERING: acquire; pairs with the client's release store in run_triple().
        while ((seen = word_.load(std::memory_order_acquire)) == last) cpu_relax();
        last = seen + 1;
        // ORDERING: release; pairs with the client's acquire load in run_triple().
        word_.store(last, std::memory_order_release);
      }
      for (int k = 0; k < paired_block; ++k) {
        reply_slot* s = nullptr;
        while (!queue_.try_dequeue(consumer, s)) cpu_relax();
        s->reply = s->value + 1;
        // ORDERING: release; pairs with the client's acquire load in run_triple().
        s->ready.store(1, std::memory_order_release);
      }
    }
  }

  // Each word that crosses threads in a block of its own (see floors.hpp's layout note).
  alignas(prefetch_pair_size) std::atomic<std::uint32_t> word_{0};
  alignas(prefetch_pair_size) std::uint32_t last_word_ = 0;  // client thread only
  reply_slot slot_;
  moodycamel::ConcurrentQueue<reply_slot*> queue_;
  moodycamel::ProducerToken token_{queue_};
  std::optional<ump::client<std::uint64_t, std::uint64_t>> cli_;
  std::thread server_;
};

double median(std::vector<double>& v) {
  if (v.empty()) return 0.0;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

void run_rtt_paired(benchmark::State& state) {
  paired_rig rig;
  std::uint64_t x = 1, wrong = 0;
  for (int i = 0; i < 4; ++i) (void)rig.run_triple(x, wrong);  // warm caches, pool and threads
  std::vector<double> ump_ns, spin_ns, slot_ns, over_spin, over_slot;
  const auto per_rt = [](bench_clock::duration d) {
    return std::chrono::duration<double, std::nano>(d).count() / paired_block;
  };
  for (auto _ : state) {
    const auto t = rig.run_triple(x, wrong);
    state.SetIterationTime(std::chrono::duration<double>(t.ump).count() / paired_block);
    ump_ns.push_back(per_rt(t.ump));
    spin_ns.push_back(per_rt(t.spin));
    slot_ns.push_back(per_rt(t.slot));
    over_spin.push_back(ump_ns.back() / spin_ns.back());
    over_slot.push_back(ump_ns.back() / slot_ns.back());
  }
  state.counters["ump_ns"] = median(ump_ns);
  state.counters["spin_ns"] = median(spin_ns);
  state.counters["slot_ns"] = median(slot_ns);
  state.counters["ump_over_spin"] = median(over_spin);
  state.counters["ump_over_slot"] = median(over_slot);
  if (wrong != 0) state.SkipWithError("wrong reply");
}

const bool registered = [] {
  // A fixed count of triples: with manual time (ump's share only), Google Benchmark would
  // otherwise size the run by ump's time alone and run the other two blocks for free.
  benchmark::RegisterBenchmark("rtt_paired/ump", run_rtt_paired)
      ->UseManualTime()
      ->Iterations(paired_triples)
      ->ReportAggregatesOnly(true);
  return true;
}();

}  // namespace
}  // namespace ump_bench
