// fuzz/fuzz_support.hpp — pieces shared by ump's fuzz targets.
//
// Every target runs on one thread and is deterministic: the input bytes are the whole
// schedule. What lives here:
//   * counted: a move-only payload that counts live objects and can be told to throw on its
//     k-th move, so a target can say exactly how many payloads ump must hold at any moment;
//   * byte_reader: pulls the script out of the input (zeros once it runs dry);
//   * fuzz_check: reports a broken expectation and traps (libFuzzer records a crash);
//   * task: a minimal eager coroutine, so async waits can be driven on the fuzzing thread,
//     resumed inline (ump::inline_scheduler) or later through a deferred_scheduler;
//   * deferred_scheduler: queues handles; the harness resumes them when the input says so.
#pragma once

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <utility>

#include "support/support.hpp"  // tests/support: shared with the unit tests

namespace ump_fuzz {

// Reports `what` and stops the process in a way every fuzzing engine records as a crash.
[[noreturn]] inline void fail(const char* what, const char* file, int line) noexcept {
  std::fprintf(stderr, "ump fuzz: expectation broken: %s (%s:%d)\n", what, file, line);
  std::fflush(stderr);
  __builtin_trap();
}

#define FUZZ_CHECK(cond, what) ((cond) ? (void)0 : ::ump_fuzz::fail(what, __FILE__, __LINE__))

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define UMP_FUZZ_EXCEPTIONS 1
#else
#define UMP_FUZZ_EXCEPTIONS 0
#endif

// Thrown by counted's move when the armed countdown reaches it.
struct injected_failure {};

// A move-only payload. The harness is single-threaded, so the counters are plain integers.
class counted {
 public:
  explicit counted(std::uint64_t v) noexcept : v_(v) { ++live_; }
  counted(counted&& o) noexcept(false) : v_(o.v_) {
    maybe_throw();
    ++live_;
  }
  counted& operator=(counted&& o) noexcept(false) {
    maybe_throw();
    v_ = o.v_;
    return *this;
  }
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;
  ~counted() { --live_; }

  [[nodiscard]] std::uint64_t value() const noexcept { return v_; }
  [[nodiscard]] static long live() noexcept { return live_; }

  // The k-th move from now on (1-based) throws injected_failure; 0 disarms.
  static void arm_throw(int k) noexcept { countdown_ = k; }
  static void disarm() noexcept { countdown_ = 0; }
  [[nodiscard]] static bool fired() noexcept { return fired_; }
  static void clear_fired() noexcept { fired_ = false; }

 private:
  static void maybe_throw() {
    if (countdown_ > 0 && --countdown_ == 0) {
      fired_ = true;
#if UMP_FUZZ_EXCEPTIONS
      throw injected_failure{};
#else
      fail("a move failure was armed in a build without exceptions", __FILE__, __LINE__);
#endif
    }
  }
  std::uint64_t v_;
  static inline long live_ = 0;
  static inline int countdown_ = 0;
  static inline bool fired_ = false;
};

// The fuzz input as a stream of bytes; reads past the end give zeros.
class byte_reader {
 public:
  byte_reader(const std::uint8_t* data, std::size_t size) noexcept : p_(data), end_(data + size) {}
  [[nodiscard]] bool done() const noexcept { return p_ == end_; }
  std::uint8_t next() noexcept { return p_ == end_ ? 0 : *p_++; }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// The harness's coroutines are tests/support/support.hpp's eager_coroutine (shared with the
// unit tests): created running, suspended at their end until destroyed. An exception that
// escapes one is a harness bug and terminates, which the fuzzer reports as a crash.
using task = ump_test::eager_coroutine;

// A scheduler (ump/scheduler.hpp) that only queues: the coroutine resumes when the harness
// runs the queue, as it would on an event loop. An owner destroying a queued coroutine must
// take its handle out first (forget()).
class deferred_scheduler {
 public:
  using queue_type = std::deque<std::coroutine_handle<>>;
  explicit deferred_scheduler(queue_type* q) noexcept : q_(q) {}
  void schedule(std::coroutine_handle<> h) const noexcept { q_->push_back(h); }

  [[nodiscard]] static bool queued(const queue_type& q, std::coroutine_handle<> h) noexcept {
    return std::find(q.begin(), q.end(), h) != q.end();
  }
  static void forget(queue_type& q, std::coroutine_handle<> h) noexcept {
    q.erase(std::remove(q.begin(), q.end(), h), q.end());
  }
  // Resumes every queued coroutine, oldest first (including any queued meanwhile).
  static void run(queue_type& q) {
    while (!q.empty()) {
      const std::coroutine_handle<> h = q.front();
      q.pop_front();
      h.resume();
    }
  }

 private:
  queue_type* q_;
};

}  // namespace ump_fuzz
