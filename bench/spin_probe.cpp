// bench/spin_probe.cpp - standalone spin ping-pong variants, to see what the suite's
// floor/spin pays that the hardware does not: the layout of its words (a flag read on every
// round trip sharing a line with a field written on every round trip, adjacent lines) and
// clock reads inside the timed loop. Not part of the suite; built as ump_spin_probe.
//   ump_spin_probe [round trips per run = 400000] [runs = 7]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
using clk = std::chrono::steady_clock;
static inline void relax() { __builtin_ia32_pause(); }

// Layout A: the suite's floor as it is: word_ on line 0, stop_ at 64, last_reply_ right after stop_.
struct suite_layout {
  alignas(64) std::atomic<std::uint32_t> word{0};
  alignas(64) std::atomic<bool> stop{false};
  std::uint32_t last_reply = 0;  // client-written, same line as stop
};
// Layout B: word alone in 128 bytes, stop in its own 128 bytes, last_reply a local.
struct split_layout {
  alignas(128) std::atomic<std::uint32_t> word{0};
  alignas(128) std::atomic<bool> stop{false};
  alignas(128) std::uint32_t last_reply = 0;
};
// Layout C: two words (request, reply), 64 bytes apart (adjacent lines).
// Layout D: two words 128 bytes apart.
template <int Gap>
struct alignas(128) two_words {
  std::atomic<std::uint32_t> req{0};
  alignas(Gap) std::atomic<std::uint32_t> rep{0};  // Gap bytes after req
  alignas(128) std::atomic<bool> stop{false};
};

template <class L, bool ReadStopEachTrip, int SampleEvery>
double one_word(long n, std::vector<long>* samples) {
  L s;
  std::thread srv([&] {
    std::uint32_t last = 0;
    for (;;) {
      std::uint32_t seen;
      while ((seen = s.word.load(std::memory_order_acquire)) == last) relax();
      if (ReadStopEachTrip ? s.stop.load(std::memory_order_relaxed) : seen == 0xffffffffu) return;
      last = seen + 1;
      s.word.store(last, std::memory_order_release);
    }
  });
  std::uint64_t x = 0, bad = 0;
  auto rt = [&] {
    const std::uint32_t sent = s.last_reply + 1;
    s.word.store(sent, std::memory_order_release);
    std::uint32_t seen;
    while ((seen = s.word.load(std::memory_order_acquire)) == sent) relax();
    s.last_reply = seen;
    bad += (x + (seen - sent)) != x + 1;
    ++x;
  };
  for (int i = 0; i < 1000; ++i) rt();
  const auto t0 = clk::now();
  for (long i = 0; i < n; ++i) {
    if (SampleEvery && i % SampleEvery == 0) {
      const auto a = clk::now();
      rt();
      samples->push_back((clk::now() - a).count());
    } else {
      rt();
    }
  }
  const auto t1 = clk::now();
  s.stop.store(true, std::memory_order_relaxed);
  s.word.store(ReadStopEachTrip ? s.last_reply + 1 : 0xffffffffu, std::memory_order_release);
  srv.join();
  if (bad) std::puts("bad");
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(n);
}

template <class L>
double two(long n) {
  L s;
  std::thread srv([&] {
    std::uint32_t last = 0;
    for (;;) {
      std::uint32_t seen;
      while ((seen = s.req.load(std::memory_order_acquire)) == last) relax();
      if (seen == 0xffffffffu) return;
      last = seen;
      s.rep.store(seen, std::memory_order_release);
    }
  });
  std::uint32_t k = 0;
  auto rt = [&] {
    ++k;
    s.req.store(k, std::memory_order_release);
    while (s.rep.load(std::memory_order_acquire) != k) relax();
  };
  for (int i = 0; i < 1000; ++i) rt();
  const auto t0 = clk::now();
  for (long i = 0; i < n; ++i) rt();
  const auto t1 = clk::now();
  s.req.store(0xffffffffu, std::memory_order_release);
  srv.join();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(n);
}

double clock_cost(long n) {
  const auto t0 = clk::now();
  long acc = 0;
  for (long i = 0; i < n; ++i) acc += clk::now().time_since_epoch().count() & 1;
  const auto t1 = clk::now();
  if (acc == -1) std::puts("");
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(n);
}

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 400000;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 7;
  struct variant {
    const char* name;
    double (*fn)(long);
  };
  static std::vector<long> smp;
  variant vs[] = {
      {"suite layout, stop read each trip, 1/8 sampled",
       [](long m) {
         smp.clear();
         smp.reserve(m / 8 + 1);
         return one_word<suite_layout, true, 8>(m, &smp);
       }},
      {"suite layout, stop read each trip, no clocks",
       [](long m) { return one_word<suite_layout, true, 0>(m, nullptr); }},
      {"split layout (128 B), stop read each trip, no clocks",
       [](long m) { return one_word<split_layout, true, 0>(m, nullptr); }},
      {"split layout (128 B), stop via sentinel, no clocks",
       [](long m) { return one_word<split_layout, false, 0>(m, nullptr); }},
      {"split layout (128 B), 1/8 sampled",
       [](long m) {
         smp.clear();
         smp.reserve(m / 8 + 1);
         return one_word<split_layout, true, 8>(m, &smp);
       }},
      {"two words 64 B apart", [](long m) { return two<two_words<64>>(m); }},
      {"two words 128 B apart", [](long m) { return two<two_words<128>>(m); }},
      {"two words 4 B apart (same line)", [](long m) { return two<two_words<4>>(m); }},
  };
  std::printf("steady_clock::now(): %.1f ns\n", clock_cost(2000000));
  for (auto& v : vs) {
    std::vector<double> r;
    std::vector<double> p50s;
    for (int i = 0; i < reps; ++i) {
      r.push_back(v.fn(n));
      if (!smp.empty()) {
        std::sort(smp.begin(), smp.end());
        p50s.push_back(double(smp[smp.size() / 2]));
        smp.clear();
      }
    }
    std::sort(r.begin(), r.end());
    std::printf("%-55s median %6.1f ns  min %6.1f  max %6.1f", v.name, r[r.size() / 2], r.front(), r.back());
    if (!p50s.empty()) {
      std::sort(p50s.begin(), p50s.end());
      std::printf("  sampled p50 %6.1f", p50s[p50s.size() / 2]);
    }
    std::puts("");
  }
}
