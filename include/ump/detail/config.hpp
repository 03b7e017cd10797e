// ump/detail/config.hpp — build configuration shared by every ump header.
//
// Internal. Decides, once per build, whether exceptions are available, what a cache line is,
// how misuse is reported (UMP_ASSERT) and where test-only delay points sit (UMP_TEST_DELAY).
// Everything here must be identical in every translation unit of a program: the CMake target
// ump::ump carries the only definitions that change it (UMP_TEST_HOOKS).
#pragma once

#if defined(UMP_MODEL_CHECK)
#include "ump/detail/atomic.hpp"  // Relacy first (tests/model/ only)
#endif

#include <cstddef>
#include <cstdint>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define UMP_HAS_EXCEPTIONS 1
#else
#define UMP_HAS_EXCEPTIONS 0
#endif

// ThreadSanitizer builds (g++ defines __SANITIZE_THREAD__, clang has __has_feature).
#if defined(__SANITIZE_THREAD__)
#define UMP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UMP_TSAN 1
#endif
#endif
#ifndef UMP_TSAN
#define UMP_TSAN 0
#endif

namespace ump::detail {

// libstdc++ 12 with clang 14 lacks std::hardware_destructive_interference_size; x86-64 and
// most AArch64 parts use 64-byte lines (adjacent-line prefetch is not modelled).
inline constexpr std::size_t cache_line_size = 64;

// Reports a broken usage rule and aborts. `rule` names the rule in plain words.
[[noreturn]] void assert_fail(const char* rule, const char* file, int line) noexcept;

// Reports an unrecoverable condition (allocation failure without exceptions) and aborts.
[[noreturn]] void fatal(const char* what) noexcept;

// One iteration of a busy-wait loop: tells the core we are spinning.
inline void cpu_relax() noexcept {
#if defined(UMP_MODEL_CHECK)
  // Under the model checker, every spin iteration lets the other modelled threads run.
  rl::yield(1, RL_INFO);
#elif defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

#if defined(UMP_TEST_HOOKS)
// Places inside the protocol's race windows where a stress test may inject a delay.
enum class delay_point : std::uint8_t {
  send_after_announce,   // sender counted its message but has not enqueued it yet
  reply_before_publish,  // replier built the outcome but has not published it
  wait_before_park,      // requester gave up spinning and is about to register
  server_before_park,    // server gave up spinning and is about to park
  wake_before_notify,    // waker claimed a parked waiter but has not woken it
  count_
};
using delay_hook = void (*)(delay_point) noexcept;
// Installs the hook called at every delay point (nullptr removes it). Test builds only.
void set_delay_hook(delay_hook hook) noexcept;
void run_delay_hook(delay_point p) noexcept;
#define UMP_TEST_DELAY(point) ::ump::detail::run_delay_hook(::ump::detail::delay_point::point)
#elif defined(UMP_MODEL_CHECK)
// Under the model checker the delay points are scheduling points: another modelled thread
// may run inside each race window, even where no atomic operation opens it (the window
// between a sender's announce and its enqueue, for one). They are preemption points, not
// yields: a yield would force a switch there and hide the schedules in which the thread
// runs on through the window (a late waker needs exactly that from the other sender).
#define UMP_TEST_DELAY(point) ::rl::ctx().sched()
#else
#define UMP_TEST_DELAY(point) ((void)0)
#endif

}  // namespace ump::detail

// A check kept in every build, for rules whose breach would otherwise be undefined
// behaviour and whose test costs one predictable branch. The message names the rule.
#define UMP_CHECK(cond, rule) \
  (__builtin_expect(static_cast<bool>(cond), 1) ? (void)0 : ::ump::detail::assert_fail(rule, __FILE__, __LINE__))

// Debug-only check of a usage rule. The message names the rule that was broken.
#if !defined(NDEBUG) || defined(UMP_ENABLE_ASSERTS)
#define UMP_ASSERT(cond, rule) ((cond) ? (void)0 : ::ump::detail::assert_fail(rule, __FILE__, __LINE__))
#define UMP_ASSERTS_ENABLED 1
#else
#define UMP_ASSERT(cond, rule) ((void)0)
#define UMP_ASSERTS_ENABLED 0
#endif
