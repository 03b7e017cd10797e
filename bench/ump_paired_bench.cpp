// Paired measurements: ump and its references timed by the same two threads, in turns.
//
// On the 2-vCPU VMs this suite runs on, the cost of moving a cache line between the two vCPUs
// changes from one minute to the next: the spin floor reads about 30, 65 or 320 ns, as the
// hypervisor places the vCPUs (BENCHMARKS.md, "How to read these numbers"). A row measured in one minute
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
//   contended_paired/ump/threads:N
//                    N client threads, one outstanding request each, take turns at blocks of
//                    contended_block round trips in all: through ump, and through moodycamel
//                    with a producer token and a reply slot per client (as the
//                    moodycamel_atomic_slot baseline, the client spins about 2 us, then
//                    yields). One server thread answers both, a block at a time (for the
//                    slots it polls the queue, yielding after 64 empty polls; for ump it
//                    calls wait()). The two orders alternate from one pair of blocks to the
//                    next.
//                    counters: ump_rps and slot_rps (medians, million round trips per second),
//                    ump_over_slot (median of the per-pair throughput ratios). The reported
//                    time is ump's per round trip.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <concurrentqueue/concurrentqueue.h>

#include "bench_util.hpp"
#include "workloads.hpp"
#include "ump/ump.hpp"

namespace ump_bench {
namespace {

constexpr int paired_block = 256;     // round trips per block: about 20-250 us each here
constexpr int paired_triples = 1500;  // per run: 0.2 s to 1 s, by the placement

// A waiter's back-off on a 2-vCPU machine: `cpu_relax` for the first 64 polls (about 2 us
// here), then yield the core, so a waiter never keeps the thread it waits for off a CPU.
inline void back_off(int& polls) noexcept {
  if (++polls < 64) {
    cpu_relax();
  } else {
    std::this_thread::yield();
  }
}

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

constexpr int contended_block = 8000;  // round trips per block, all clients together
constexpr int contended_pairs = 20;

// The contended rig: one server thread, N client threads, blocks of one kind at a time.
class contended_rig {
 public:
  enum kind : std::uint32_t { ump_kind = 0, slot_kind = 1 };

  explicit contended_rig(int n) : n_{static_cast<std::uint32_t>(n)}, per_client_{contended_block / n} {
    auto [srv, cli] = ump::channel<std::uint64_t, std::uint64_t>();
    server_ = std::thread([this, srv = std::move(srv)]() mutable { serve(srv); });
    for (int i = 0; i < n; ++i) {
      clients_.emplace_back([this, i, c = cli] { run_client(i, c); });
    }
  }
  contended_rig(const contended_rig&) = delete;
  contended_rig& operator=(const contended_rig&) = delete;
  ~contended_rig() {
    stop_ = true;
    release_all();
    for (auto& t : clients_) t.join();  // the last client's drop ends the server's ump block
    server_.join();
  }

  // One block of kind `k`; returns its wall time (release to the last reply).
  double run(kind k) {
    kind_ = k;
    // ORDERING: relaxed; the previous run() acquired every client's last fetch_add, and the
    // release in release_all() publishes the reset.
    done_.store(0, std::memory_order_relaxed);
    const auto t0 = bench_clock::now();
    release_all();
    // ORDERING: acquire; pairs with the clients' acq_rel fetch_add.
    for (std::uint32_t d = done_.load(std::memory_order_acquire); d != n_; d = done_.load(std::memory_order_acquire))
      done_.wait(d, std::memory_order_acquire);
    return std::chrono::duration<double>(bench_clock::now() - t0).count();
  }
  [[nodiscard]] std::uint64_t block_size() const noexcept { return std::uint64_t(per_client_) * n_; }
  // Wrong replies so far; call between blocks (run() acquired every client's count).
  [[nodiscard]] std::uint64_t wrong() const noexcept {
    // ORDERING: relaxed; ordered after the clients' adds by run()'s acquire of done_.
    return wrong_.load(std::memory_order_relaxed);
  }

 private:
  void release_all() {
    // ORDERING: release; pairs with the clients' acquire wait/load of gate_ (the server
    // reads no gate: it learns each block's kind from its first message, see serve()).
    gate_.fetch_add(1, std::memory_order_release);
    gate_.notify_all();
  }

  void run_client(int i, ump::client<std::uint64_t, std::uint64_t> c) {
    moodycamel::ProducerToken token{queue_};
    reply_slot slot;
    std::uint64_t x = std::uint64_t(i) << 40, bad = 0;
    std::uint32_t seen = 0;
    for (;;) {
      // ORDERING: acquire; pairs with the release RMW in release_all().
      gate_.wait(seen, std::memory_order_acquire);
      // ORDERING: acquire; same partner (kind_ and stop_ were written before it).
      seen = gate_.load(std::memory_order_acquire);
      if (stop_) break;
      if (kind_ == ump_kind) {
        for (int k = 0; k < per_client_; ++k, ++x) bad += *c.req(x) != x + 1;
      } else {
        for (int k = 0; k < per_client_; ++k, ++x) {
          slot.value = x;
          // ORDERING: relaxed; published by the enqueue (release inside moodycamel).
          slot.ready.store(0, std::memory_order_relaxed);
          queue_.enqueue(token, &slot);
          int polls = 0;
          // ORDERING: acquire; pairs with the server's release store of ready.
          while (slot.ready.load(std::memory_order_acquire) == 0) back_off(polls);
          bad += slot.reply != x + 1;
        }
      }
      if (bad != 0) {
        // ORDERING: relaxed; published to run() by the fetch_add on done_ below.
        wrong_.fetch_add(std::exchange(bad, 0), std::memory_order_relaxed);
      }
      // ORDERING: acq_rel; release publishes this block's work to run()'s acquire.
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) done_.notify_one();
    }
  }

  // Answers blocks in the order run() releases them: the server learns each block's kind
  // from its first message (a ump request or a slot), so it needs no gate of its own.
  void serve(ump::server<std::uint64_t, std::uint64_t>& srv) {
    moodycamel::ConsumerToken consumer{queue_};
    reply_slot* batch[64];
    const std::uint64_t block = block_size();
    for (;;) {
      // Whichever kind shows up first: look at the slot queue, then wait briefly on ump.
      std::uint64_t answered = 0;
      std::size_t got = queue_.try_dequeue_bulk(consumer, batch, 64);
      if (got == 0) {
        auto r = srv.wait_for(std::chrono::microseconds(20));
        if (!r) {
          if (r.error().code() == ump::errc::clients_disappeared) return;
          continue;  // timed out: look again
        }
        r->ctx.reply(r->msg + 1);
        for (answered = 1; answered < block; ++answered) {
          auto q = srv.wait();
          if (!q) return;
          q->ctx.reply(q->msg + 1);
        }
        continue;
      }
      for (;;) {
        for (std::size_t j = 0; j < got; ++j) {
          batch[j]->reply = batch[j]->value + 1;
          // ORDERING: release; pairs with the client's acquire load of ready.
          batch[j]->ready.store(1, std::memory_order_release);
        }
        answered += got;
        if (answered == block) break;
        int polls = 0;
        while ((got = queue_.try_dequeue_bulk(consumer, batch, 64)) == 0) back_off(polls);
      }
    }
  }

  std::uint32_t n_;
  int per_client_;
  kind kind_ = ump_kind;  // written before each release, read after it
  bool stop_ = false;     // likewise
  alignas(cache_line_size) std::atomic<std::uint32_t> gate_{0};
  alignas(cache_line_size) std::atomic<std::uint32_t> done_{0};
  alignas(cache_line_size) std::atomic<std::uint64_t> wrong_{0};
  moodycamel::ConcurrentQueue<reply_slot*> queue_;
  std::thread server_;
  std::vector<std::thread> clients_;
};

void run_contended_paired(benchmark::State& state) {
  std::uint64_t wrong = 0;
  {
    contended_rig rig{static_cast<int>(state.range(0))};
    const double block = static_cast<double>(rig.block_size());
    for (int i = 0; i < 2; ++i) {  // warm-up: lanes, tokens, pools and queue blocks
      (void)rig.run(contended_rig::ump_kind);
      (void)rig.run(contended_rig::slot_kind);
    }
    std::vector<double> ump_rps, slot_rps, ratio;
    bool ump_first = true;
    for (auto _ : state) {
      double ump_s = 0, slot_s = 0;
      if (ump_first) {
        ump_s = rig.run(contended_rig::ump_kind);
        slot_s = rig.run(contended_rig::slot_kind);
      } else {
        slot_s = rig.run(contended_rig::slot_kind);
        ump_s = rig.run(contended_rig::ump_kind);
      }
      ump_first = !ump_first;
      state.SetIterationTime(ump_s / block);
      ump_rps.push_back(block / ump_s / 1e6);
      slot_rps.push_back(block / slot_s / 1e6);
      ratio.push_back(slot_s / ump_s);
    }
    state.counters["ump_rps"] = median(ump_rps);
    state.counters["slot_rps"] = median(slot_rps);
    state.counters["ump_over_slot"] = median(ratio);
    wrong = rig.wrong();
  }
  if (wrong != 0) state.SkipWithError("wrong reply");
}

const bool registered = [] {
  // A fixed count of triples: with manual time (ump's share only), Google Benchmark would
  // otherwise size the run by ump's time alone and run the other two blocks for free.
  benchmark::RegisterBenchmark("rtt_paired/ump", run_rtt_paired)
      ->UseManualTime()
      ->Iterations(paired_triples)
      ->ReportAggregatesOnly(true);
  auto* contended = benchmark::RegisterBenchmark("contended_paired/ump", run_contended_paired)
                        ->UseManualTime()
                        ->Iterations(contended_pairs)
                        ->ArgName("threads")
                        ->ReportAggregatesOnly(true);
  for (int n : contended_clients) contended->Arg(n);
  return true;
}();

}  // namespace
}  // namespace ump_bench
