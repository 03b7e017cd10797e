// Spin-then-park slow paths (see ump/detail/park.hpp).
#include "ump/detail/park.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <thread>

#include "ump/detail/config.hpp"

#if defined(__linux__)
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace ump::detail {
namespace {

// Statistics (read_park_stats): how often threads parked and wakers woke.
std::atomic<std::uint64_t> g_parks{0};
std::atomic<std::uint64_t> g_wakes{0};
static_assert(decltype(g_parks)::is_always_lock_free, "counting a park or a wake takes no lock");

#if defined(__linux__)
// std::atomic<uint32_t> is a plain 32-bit word on Linux targets: the futex works on it.
static_assert(sizeof(atomic<std::uint32_t>) == sizeof(std::uint32_t));
std::uint32_t* futex_addr(const atomic<std::uint32_t>& w) noexcept {
  return reinterpret_cast<std::uint32_t*>(const_cast<atomic<std::uint32_t>*>(&w));
}
#endif

// What spinning has been worth lately on this thread (wait_options::adaptive). The signal is
// starvation: during a long spin (one that reached its yielding phase), the thread's CPU time
// grew by less than half the wall time, so it spent most of the spin off its core (preempted,
// or its yields let another thread run). That means threads outnumber cores, and spinning
// then takes the core from the thread being waited for. Starved spins are tracked as a
// moving share (each long spin moves it 1/8 of the way to 0 or 1). A second signal covers
// the thread that keeps its core while the one it waits for has lost its own: a spin that
// runs out looks (at most every 5 ms per thread) at the number of runnable threads on the
// machine (/proc/loadavg) and compares it with the CPUs this process may use. While the
// starved share is above one quarter, or the machine was crowded at the last look, the
// thread counts as oversubscribed, and every spin that runs out halves the next budget
// (down to spin / 64). Otherwise a spin that runs out changes nothing: the cores
// are free and the caller asked for that budget (an isolated hiccup, an interrupt or the
// hypervisor taking the vCPU for a moment, does not reach one quarter). A spin that succeeds
// doubles the budget back. While shrunk, every probe_every-th wait spins the full budget to
// find out whether spinning pays again; a failed probe doubles the interval to the next one,
// so under lasting overload probes become rare. Waits are counted towards a probe from the
// moment the budget first shrinks: the 16th wait after that is the first.
struct spin_governor {
  static constexpr unsigned max_shift = 6;
  static constexpr unsigned first_probe = 16;
  static constexpr unsigned max_probe = 1024;
  static constexpr unsigned share_one = 256;  // fixed point: 256 = every long spin starved
  // A long spin's CPU-time sample is a system call (CLOCK_THREAD_CPUTIME_ID, ~0.5 µs on a
  // VM). One that ran out pays it while nothing waits, but one that succeeded would pay it
  // between seeing the event and acting on it, so only one success in this many is sampled.
  static constexpr unsigned success_sample_every = 16;
  unsigned shift = 0;
  unsigned probe_every = first_probe;
  unsigned since_probe = 0;
  unsigned starved_share = 0;
  unsigned long_successes = 0;  // long spins that succeeded (one in success_sample_every is sampled)
  bool crowded = false;         // more runnable threads than CPUs at the last look
  clock::time_point looked{};
  [[nodiscard]] bool oversubscribed() const noexcept { return crowded || starved_share > share_one / 4; }
};
thread_local spin_governor t_governor;

#if defined(__linux__)
// True if the machine has more runnable threads than this process may use CPUs right now:
// the fourth field of /proc/loadavg counts runnable threads at this instant ("3/412").
bool machine_crowded() noexcept {
  static const long cpus = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) return static_cast<long>(CPU_COUNT(&set));
    return sysconf(_SC_NPROCESSORS_ONLN);
  }();
  const int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[128];
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* p = buf;
  for (int field = 0; field < 3 && p != nullptr; ++field) {
    p = std::strchr(p, ' ');
    if (p != nullptr) ++p;
  }
  if (p == nullptr) return false;
  return std::strtol(p, nullptr, 10) > cpus;
}
#else
bool machine_crowded() noexcept { return false; }
#endif
// A spin that runs out looks at the run queue at most this often (per thread).
constexpr clock::duration crowd_check_every = std::chrono::milliseconds(5);

clock::duration thread_cpu_now() noexcept {
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return {};
  return std::chrono::duration_cast<clock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                     std::chrono::nanoseconds(ts.tv_nsec));
}

}  // namespace

spin_plan plan_spin(const wait_options& opts) noexcept {
  spin_governor& gov = t_governor;
  spin_plan p{std::chrono::duration_cast<clock::duration>(opts.spin), false, opts.adaptive};
  if (opts.adaptive && gov.shift > 0) {
    if (++gov.since_probe >= gov.probe_every) {
      gov.since_probe = 0;
      p.probe = true;
    } else {
      p.budget /= (1 << gov.shift);
    }
  }
  return p;
}

void record_spin(const spin_plan& plan, spin_end how, std::optional<bool> starved) noexcept {
  if (!plan.adaptive) return;
  spin_governor& gov = t_governor;
  if (starved.has_value()) {
    gov.starved_share -= gov.starved_share / 8;
    if (*starved) gov.starved_share += spin_governor::share_one / 8;
  }
  switch (how) {
    case spin_end::succeeded:
      if (plan.probe) {
        gov.shift = 0;
        gov.probe_every = spin_governor::first_probe;
      } else if (gov.shift > 0) {
        --gov.shift;
      }
      break;
    case spin_end::ran_out:
      if (!gov.oversubscribed()) break;
      if (gov.shift == 0) gov.since_probe = 0;  // the count to the first probe starts now
      if (gov.shift < spin_governor::max_shift) ++gov.shift;
      if (plan.probe && gov.probe_every < spin_governor::max_probe) gov.probe_every *= 2;
      break;
    case spin_end::deadline:
      break;  // cut short by the caller: says nothing about the budget
  }
}

void note_crowded(bool crowded) noexcept { t_governor.crowded = crowded; }

unsigned spin_budget_shift() noexcept { return t_governor.shift; }

bool spin_until(bool (*poll)(void* ctx) noexcept, void* ctx, const wait_options& opts, deadline dl,
                wait_history* hist) noexcept {
  if (opts.spin.count() <= 0) return false;
  spin_plan plan = plan_spin(opts);
  if (hist != nullptr) plan.budget = hist->spin_budget(plan.budget, opts);
  const clock::time_point start = clock::now();
  clock::time_point end = start + plan.budget;
  const bool cut_by_deadline = end > dl.at;
  if (cut_by_deadline) end = dl.at;
  const clock::time_point yield_from = start + opts.spin_before_yield;
  // Set when the spin reaches its yielding phase (a long spin): wall and CPU time then, so
  // that its end can tell whether the thread kept its core (see spin_governor).
  clock::time_point long_from{};
  clock::duration cpu_from{};
  const auto starved = [&](clock::time_point now) -> std::optional<bool> {
    if (long_from == clock::time_point{} || now - long_from < std::chrono::microseconds(10)) return std::nullopt;
    return (thread_cpu_now() - cpu_from) * 2 < now - long_from;
  };
  // The clock is read every 64 polls (a pause is tens of ns): cheap next to a round trip.
  for (unsigned i = 1;; ++i) {
    if (poll(ctx)) {
      if (hist != nullptr) hist->record_short();
      if (plan.adaptive) {
        std::optional<bool> sample;
        if (long_from != clock::time_point{} &&
            ++t_governor.long_successes % spin_governor::success_sample_every == 0) {
          sample = starved(clock::now());
        }
        record_spin(plan, spin_end::succeeded, sample);
      }
      return true;
    }
    cpu_relax();
    if ((i & 63) == 0) {
      const clock::time_point now = clock::now();
      if (now >= end) {
        if (plan.adaptive) {
          if (!cut_by_deadline && now - t_governor.looked >= crowd_check_every) {
            t_governor.looked = now;
            note_crowded(machine_crowded());
          }
          record_spin(plan, cut_by_deadline ? spin_end::deadline : spin_end::ran_out, starved(now));
        }
        return false;
      }
      // Past the pure-spin part, give the core away now and then: when threads outnumber
      // cores, the thread we wait for may be waiting for our core.
      if (now >= yield_from) {
        if (plan.adaptive && long_from == clock::time_point{}) {
          long_from = now;
          cpu_from = thread_cpu_now();
        }
        if ((i & 255) == 0) std::this_thread::yield();
      }
    }
  }
}

namespace {
struct word_watch {
  const atomic<std::uint32_t>* word;
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

std::uint32_t spin_while_equal(const atomic<std::uint32_t>& word, std::uint32_t value, const wait_options& opts,
                               deadline dl, wait_history* hist) noexcept {
  word_watch w{&word, value, value};
  return spin_until(&word_changed, &w, opts, dl, hist) ? w.seen : value;
}

bool park_while_equal(const atomic<std::uint32_t>& word, std::uint32_t value, deadline dl) noexcept {
  // ORDERING: relaxed; a statistic, ordered with nothing (see read_park_stats).
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
    // ORDERING: acquire, pairs with the release part of the RMW that moves the word away from
    // `value` (as spin_while_equal's loads do).
    word.wait(value, std::memory_order_acquire);
    return true;
  }
  // ORDERING: acquire, as above.
  while (word.load(std::memory_order_acquire) == value) {
    if (dl.passed()) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return true;
#endif
}

void unpark_all(const atomic<std::uint32_t>& word) noexcept {
  // ORDERING: relaxed; a statistic, ordered with nothing (see read_park_stats).
  g_wakes.fetch_add(1, std::memory_order_relaxed);
#if defined(__linux__)
  syscall(SYS_futex, futex_addr(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#else
  const_cast<atomic<std::uint32_t>&>(word).notify_all();
#endif
}

park_stats read_park_stats() noexcept {
  // ORDERING: relaxed; statistics: each count only grows, so a reader polling for a park sees
  // it eventually, and one that needs exact totals joins the counting threads first.
  return {g_parks.load(std::memory_order_relaxed), g_wakes.load(std::memory_order_relaxed)};
}

}  // namespace ump::detail
