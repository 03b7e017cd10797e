// Test support: payloads that count their own lifetimes, and sizes scaled for sanitizers.
//
// tracked<Tag> counts constructions, moves and destructions in process-wide atomics, and can
// be told to throw on the k-th move. Use `lifetime_check guard;` at the top of a test case:
// its destructor CHECKs that every tracked object made during the case has been destroyed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace ump_test {

// Iteration counts are divided by this under sanitizers (never skipped, only smaller).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr int sanitizer_divisor = 10;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr int sanitizer_divisor = 10;
#else
inline constexpr int sanitizer_divisor = 1;
#endif
#else
inline constexpr int sanitizer_divisor = 1;
#endif
constexpr int scaled(int n) { return n / sanitizer_divisor > 0 ? n / sanitizer_divisor : 1; }

struct move_failure : std::runtime_error {
  move_failure() : std::runtime_error("tracked: injected move failure") {}
};

// A payload with a value, counted everywhere. Move-only by default.
class tracked {
 public:
  explicit tracked(std::uint64_t v = 0) noexcept : v_(v) { on_make(); }
  tracked(tracked&& o) noexcept(false) : v_(o.v_) {
    maybe_throw();
    on_make();
    moves_.fetch_add(1, std::memory_order_relaxed);
  }
  tracked& operator=(tracked&& o) noexcept(false) {
    maybe_throw();
    v_ = o.v_;
    moves_.fetch_add(1, std::memory_order_relaxed);
    return *this;
  }
  tracked(const tracked&) = delete;
  tracked& operator=(const tracked&) = delete;
  ~tracked() { destroyed_.fetch_add(1, std::memory_order_relaxed); }

  [[nodiscard]] std::uint64_t value() const noexcept { return v_; }

  static long live() noexcept {
    return made_.load(std::memory_order_acquire) - destroyed_.load(std::memory_order_acquire);
  }
  static long made() noexcept { return made_.load(std::memory_order_relaxed); }
  static long moves() noexcept { return moves_.load(std::memory_order_relaxed); }
  // The k-th move from now on (1-based) throws move_failure; 0 disables.
  static void throw_on_move(long k) noexcept { throw_countdown_.store(k, std::memory_order_relaxed); }

 private:
  static void on_make() noexcept { made_.fetch_add(1, std::memory_order_relaxed); }
  static void maybe_throw() {
    long k = throw_countdown_.load(std::memory_order_relaxed);
    while (k > 0) {
      if (throw_countdown_.compare_exchange_weak(k, k - 1, std::memory_order_relaxed)) {
#if defined(__cpp_exceptions)
        if (k == 1) throw move_failure();
#else
        if (k == 1) std::abort();  // -fno-exceptions builds never arm throw_on_move
#endif
        return;
      }
    }
  }
  std::uint64_t v_;
  static inline std::atomic<long> made_{0};
  static inline std::atomic<long> destroyed_{0};
  static inline std::atomic<long> moves_{0};
  static inline std::atomic<long> throw_countdown_{0};
};

// Checks at scope exit that no tracked object made inside the scope is still alive.
class lifetime_check {
 public:
  lifetime_check() noexcept : start_(tracked::live()) {}
  ~lifetime_check();
  lifetime_check(const lifetime_check&) = delete;
  lifetime_check& operator=(const lifetime_check&) = delete;

 private:
  long start_;
};

}  // namespace ump_test
