// bench/rss_flood.cpp - resident memory of a flooded channel, bounded against unbounded.
//
//   ump_rss_flood [--capacity N] [--seconds S] [--work-us U] [--post-every-us G] [--producers P]
//                 [--interval-ms I] [--max-rss-mib M] [--min-avail-mib A]
//
// One slow server on a ump::ng channel busy-waits --work-us (default 10) per message it
// takes; --producers threads (default 1) post 128-byte messages as fast as they can for
// --seconds (default 60). --capacity N (default 0: unbounded) sets channel_options::capacity:
// a full channel makes the posters wait for room, an unbounded one queues everything and
// grows. Every --interval-ms (default 500) it prints a CSV row to stdout:
//
//   seconds,rss_kib,queued
//
// seconds since the flood started, the process's resident set (/proc/self/statm) in KiB, and
// messages posted but not yet taken by the server (posted - taken, read without locking).
// Guard: the run stops early when the resident set passes --max-rss-mib (default 4096) or the
// machine's MemAvailable falls under --min-avail-mib (default 2048); it then prints a last
// row, a `# stopped early: ...` comment line on stdout and the same sentence on stderr.
// Lines starting with '#' are comments (tools/plot_rss.py skips them and shows the note).
//
// At the end the posters stop first (a bounded channel keeps draining, so a waiting poster
// gets its room), then the server stops without draining; the queued messages are destroyed
// with the server.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "ump/ng.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
inline constexpr std::size_t payload_bytes = 128;
using payload = std::array<std::uint64_t, payload_bytes / 8>;

struct options {
  std::uint32_t capacity = 0;
  double seconds = 60;
  std::int64_t work_us = 10;
  double post_every_us = 0;  // 0: post as fast as possible; else one post per this many µs
  int producers = 1;
  std::int64_t interval_ms = 500;
  std::int64_t max_rss_mib = 4096;
  std::int64_t min_avail_mib = 2048;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--capacity N (0 = unbounded)] [--seconds S] [--work-us U] [--producers P]\n"
               "          [--post-every-us G] [--interval-ms I] [--max-rss-mib M] [--min-avail-mib A]\n",
               argv0);
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    const char* v = argv[++i];
    char* end = nullptr;
    const double x = std::strtod(v, &end);
    if (end == v || *end != '\0' || x < 0) usage(argv[0]);
    if (a == "--capacity") {
      o.capacity = static_cast<std::uint32_t>(x);
    } else if (a == "--seconds") {
      o.seconds = x;
    } else if (a == "--work-us") {
      o.work_us = static_cast<std::int64_t>(x);
    } else if (a == "--post-every-us") {
      o.post_every_us = x;
    } else if (a == "--producers") {
      o.producers = std::max(1, static_cast<int>(x));
    } else if (a == "--interval-ms") {
      o.interval_ms = std::max<std::int64_t>(10, static_cast<std::int64_t>(x));
    } else if (a == "--max-rss-mib") {
      o.max_rss_mib = static_cast<std::int64_t>(x);
    } else if (a == "--min-avail-mib") {
      o.min_avail_mib = static_cast<std::int64_t>(x);
    } else {
      usage(argv[0]);
    }
  }
  return o;
}

std::int64_t rss_kib() {
  std::ifstream f("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// MemAvailable from /proc/meminfo in KiB, or -1 if unknown.
std::int64_t mem_available_kib() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  std::int64_t value = 0;
  std::string unit;
  while (f >> key >> value) {
    std::getline(f, unit);
    if (key == "MemAvailable:") return value;
  }
  return -1;
}

// One counter per thread, each on its own cache line; only its thread writes it.
struct alignas(64) counter {
  std::atomic<std::uint64_t> n{0};
};

}  // namespace

int main(int argc, char** argv) {
  const options opt = parse(argc, argv);
  ump::channel_options chopts;
  chopts.capacity = opt.capacity;
  auto [srv, cli] = ump::ng::channel<payload, int, int>(chopts);
  std::optional<ump::ng::client<payload, int, int>> client{std::move(cli)};

  std::atomic<bool> stop_posting{false};
  std::atomic<bool> stop_serving{false};
  counter taken;
  std::vector<counter> posted(static_cast<std::size_t>(opt.producers));

  const auto work = std::chrono::microseconds{opt.work_us};
  std::thread server([&, srv = std::move(srv)]() mutable {
    std::uint64_t n = 0, sum = 0;
    // ORDERING: relaxed; a stop request only, the joins synchronise.
    while (!stop_serving.load(std::memory_order_relaxed)) {
      auto m = srv.wait();
      if (!m) break;  // every client is gone and the queue is empty
      if (m->is_post()) sum += m->post()[0];
      // ORDERING: relaxed; a counter read by the sampler, no data.
      taken.n.store(++n, std::memory_order_relaxed);
      const auto until = clock_type::now() + work;
      while (clock_type::now() < until) {
      }
    }
    if (sum == 42) std::fputc(' ', stderr);  // keep the reads
    // srv goes out of scope with this lambda's closure (at join): queued posts are destroyed.
  });

  std::vector<std::thread> posters;
  for (int i = 0; i < opt.producers; ++i) {
    posters.emplace_back([&, i, p = client->poster()]() mutable {
      std::uint64_t n = 0;
      payload msg{};
      const auto every = std::chrono::nanoseconds(static_cast<std::int64_t>(opt.post_every_us * 1000));
      auto next = clock_type::now();
      // ORDERING: relaxed; a stop request only.
      while (!stop_posting.load(std::memory_order_relaxed)) {
        if (every.count() != 0) {  // paced: busy-wait to the next slot
          next += every;
          while (clock_type::now() < next) {
          }
        }
        msg[0] = n;
        if (!p.post(msg)) break;
        // ORDERING: relaxed; a counter read by the sampler, no data.
        posted[static_cast<std::size_t>(i)].n.store(++n, std::memory_order_relaxed);
      }
    });
  }

  std::printf(
      "# ump_rss_flood: capacity=%u (%s), seconds=%g, work_us=%lld, post_every_us=%g, producers=%d, "
      "payload_bytes=%zu\n",
      opt.capacity, opt.capacity == 0 ? "unbounded" : "bounded", opt.seconds, static_cast<long long>(opt.work_us),
      opt.post_every_us, opt.producers, payload_bytes);
  std::printf("seconds,rss_kib,queued\n");
  const auto t0 = clock_type::now();
  auto row = [&](double s, std::int64_t rss) {
    std::uint64_t p = 0;
    // ORDERING: relaxed; racy probes, good enough for a sample.
    for (auto& c : posted) p += c.n.load(std::memory_order_relaxed);
    const std::uint64_t t = taken.n.load(std::memory_order_relaxed);
    std::printf("%.3f,%lld,%llu\n", s, static_cast<long long>(rss), static_cast<unsigned long long>(p > t ? p - t : 0));
    std::fflush(stdout);
  };
  row(0.0, rss_kib());

  const auto check = std::chrono::milliseconds{10};
  const auto interval = std::chrono::milliseconds{opt.interval_ms};
  const auto end = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(opt.seconds));
  auto next_row = t0 + interval;
  std::string stopped;
  for (;;) {
    std::this_thread::sleep_for(check);
    const auto now = clock_type::now();
    const double s = std::chrono::duration<double>(now - t0).count();
    const std::int64_t rss = rss_kib();
    const std::int64_t avail = mem_available_kib();
    if (rss > opt.max_rss_mib * 1024) {
      stopped = "resident set " + std::to_string(rss / 1024) + " MiB passed --max-rss-mib " +
                std::to_string(opt.max_rss_mib) + " at " + std::to_string(s) + " s";
    } else if (avail >= 0 && avail < opt.min_avail_mib * 1024) {
      stopped = "MemAvailable " + std::to_string(avail / 1024) + " MiB fell under --min-avail-mib " +
                std::to_string(opt.min_avail_mib) + " at " + std::to_string(s) + " s";
    }
    if (!stopped.empty() || now >= end) {
      row(s, rss);
      break;
    }
    if (now >= next_row) {
      row(s, rss);
      next_row += interval;
    }
  }
  // ORDERING: relaxed; the joins synchronise.
  stop_posting.store(true, std::memory_order_relaxed);
  for (auto& t : posters) t.join();
  stop_serving.store(true, std::memory_order_relaxed);
  client.reset();  // wakes a server waiting on an empty channel
  server.join();
  if (!stopped.empty()) {
    std::printf("# stopped early: %s\n", stopped.c_str());
    std::fprintf(stderr, "ump_rss_flood: stopped early: %s\n", stopped.c_str());
  }
  std::uint64_t total = 0;
  for (auto& c : posted) total += c.n.load(std::memory_order_relaxed);
  std::printf("# posted=%llu taken=%llu\n", static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(taken.n.load(std::memory_order_relaxed)));
  return 0;
}
