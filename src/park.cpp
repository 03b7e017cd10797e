// Spin-then-park slow paths (see ump/detail/park.hpp).
#include "ump/detail/park.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <ctime>
#include <thread>

#include "ump/detail/config.hpp"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace ump::detail {
namespace {

std::atomic<std::uint64_t> g_parks{0};
std::atomic<std::uint64_t> g_wakes{0};

#if defined(__linux__)
// std::atomic<uint32_t> is a plain 32-bit word on Linux targets: the futex works on it.
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
std::uint32_t* futex_addr(const std::atomic<std::uint32_t>& w) noexcept {
  return reinterpret_cast<std::uint32_t*>(const_cast<std::atomic<std::uint32_t>*>(&w));
}
#endif

// What spinning has been worth lately on this thread (wait_options::adaptive). A spin that
// runs out of budget halves the next budget (down to spin / 64); a spin that succeeds doubles
// it back (up to the channel's budget). While shrunk, every probe_every-th wait spins the
// full budget to find out whether spinning pays again; a failed probe doubles the interval
// to the next one, so under lasting overload probes become rare. Waits are counted towards
// a probe from the moment the budget first shrinks: the 16th wait after that is the first.
struct spin_governor {
  static constexpr unsigned max_shift = 6;
  static constexpr unsigned first_probe = 16;
  static constexpr unsigned max_probe = 1024;
  unsigned shift = 0;
  unsigned probe_every = first_probe;
  unsigned since_probe = 0;
};
thread_local spin_governor t_governor;

}  // namespace

bool spin_until(bool (*poll)(void* ctx) noexcept, void* ctx, const wait_options& opts,
                deadline dl) noexcept {
  if (opts.spin.count() <= 0) return false;
  spin_governor& gov = t_governor;
  clock::duration budget = std::chrono::duration_cast<clock::duration>(opts.spin);
  bool probe = false;
  if (opts.adaptive && gov.shift > 0) {
    if (++gov.since_probe >= gov.probe_every) {
      gov.since_probe = 0;
      probe = true;
    } else {
      budget /= (1 << gov.shift);
    }
  }
  const clock::time_point start = clock::now();
  clock::time_point end = start + budget;
  const bool cut_by_deadline = end > dl.at;
  if (cut_by_deadline) end = dl.at;
  const clock::time_point yield_from = start + opts.spin_before_yield;
  // The clock is read every 64 polls (a pause is tens of ns): cheap next to a round trip.
  for (unsigned i = 1;; ++i) {
    if (poll(ctx)) {
      if (opts.adaptive) {
        if (probe) {
          gov.shift = 0;
          gov.probe_every = spin_governor::first_probe;
        } else if (gov.shift > 0) {
          --gov.shift;
        }
      }
      return true;
    }
    cpu_relax();
    if ((i & 63) == 0) {
      const clock::time_point now = clock::now();
      if (now >= end) {
        // A spin cut short by the caller's deadline says nothing about the budget.
        if (opts.adaptive && !cut_by_deadline) {
          if (gov.shift == 0) gov.since_probe = 0;  // the count to the first probe starts now
          if (gov.shift < spin_governor::max_shift) ++gov.shift;
          if (probe && gov.probe_every < spin_governor::max_probe) gov.probe_every *= 2;
        }
        return false;
      }
      // Past the pure-spin part, give the core away now and then: when threads outnumber
      // cores, the thread we wait for may be waiting for our core.
      if (now >= yield_from && (i & 255) == 0) std::this_thread::yield();
    }
  }
}

namespace {
struct word_watch {
  const std::atomic<std::uint32_t>* word;
  std::uint32_t value;
  std::uint32_t seen;
};
bool word_changed(void* ctx) noexcept {
  auto* w = static_cast<word_watch*>(ctx);
  // ORDERING: acquire, pairs with the RMW that moves the word away from `value`.
  w->seen = w->word->load(std::memory_order_acquire);
  return w->seen != w->value;
}
}  // namespace

std::uint32_t spin_while_equal(const std::atomic<std::uint32_t>& word, std::uint32_t value,
                               const wait_options& opts, deadline dl) noexcept {
  word_watch w{&word, value, value};
  return spin_until(&word_changed, &w, opts, dl) ? w.seen : value;
}

bool park_while_equal(const std::atomic<std::uint32_t>& word, std::uint32_t value,
                      deadline dl) noexcept {
  g_parks.fetch_add(1, std::memory_order_relaxed);
#if defined(__linux__)
  if (dl.none()) {
    syscall(SYS_futex, futex_addr(word), FUTEX_WAIT_PRIVATE, value, nullptr, nullptr, 0);
    return true;
  }
  // Compare before subtracting: for a deadline far in the past (time_point::min()),
  // dl.at - now overflows and used to become a huge timeout.
  const clock::time_point now = clock::now();
  if (dl.at <= now) return false;
  const auto left = dl.at - now;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  const long rc = syscall(SYS_futex, futex_addr(word), FUTEX_WAIT_PRIVATE, value, &ts, nullptr, 0);
  if (rc == -1 && errno == ETIMEDOUT) return false;
  return true;
#else
  // Portable fallback: std::atomic::wait has no deadline, so poll with short sleeps then.
  if (dl.none()) {
    word.wait(value, std::memory_order_acquire);
    return true;
  }
  while (word.load(std::memory_order_acquire) == value) {
    if (dl.passed()) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return true;
#endif
}

void unpark_all(const std::atomic<std::uint32_t>& word) noexcept {
  g_wakes.fetch_add(1, std::memory_order_relaxed);
#if defined(__linux__)
  syscall(SYS_futex, futex_addr(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#else
  const_cast<std::atomic<std::uint32_t>&>(word).notify_all();
#endif
}

unsigned spin_budget_shift() noexcept { return t_governor.shift; }

park_stats read_park_stats() noexcept {
  return {g_parks.load(std::memory_order_relaxed), g_wakes.load(std::memory_order_relaxed)};
}

}  // namespace ump::detail
