// ump/detail/atomic.hpp — the atomic type of ump's wait/wake and lifecycle protocol.
//
// Internal. The protocol's shared words (the server's ctl_, the reference and strong counts,
// the reply cell's state, the pool head, the producer lock) are declared as
// detail::atomic<T>. In every normal build that is std::atomic<T> itself: same type, same code.
//
// With UMP_MODEL_CHECK defined (only the model-checking tests in tests/model/ do this), it is
// a thin wrapper over Relacy's rl::atomic<T>, so that the real protocol code runs under
// Relacy's model of the C++ memory model: every load, store and RMW becomes a scheduling
// point, relaxed loads may return stale values, and release/acquire pairs are tracked. The
// wrapper offers only the std::atomic members the protocol uses, and records the caller's
// file and line for Relacy's execution histories.
#pragma once

#if !defined(UMP_MODEL_CHECK)

#include <atomic>

namespace ump::detail {
template <class T>
using atomic = std::atomic<T>;
}  // namespace ump::detail

#else  // UMP_MODEL_CHECK

// Relacy's umbrella header (relacy/relacy.hpp) also brings in its pthread and Win32
// emulation, which #defines pthread_*, sem_*, E* and friends, and it #defines new, delete,
// malloc, free, assert, errno and memory_order_* for the code that follows. Those macros
// would rewrite the standard library headers included after it. So include the parts of
// Relacy the umbrella header lists, less the emulation layers and that macro block: ump
// uses Relacy through rl:: names only. (Relacy's own headers still want to come first in a
// translation unit; every ump header includes config.hpp, which includes this one first.)
#include <relacy/base.hpp>
#include <relacy/context.hpp>
#include <relacy/context_base_impl.hpp>
#include <relacy/backoff.hpp>
#include <relacy/atomic_fence.hpp>
#include <relacy/atomic.hpp>
#include <relacy/var.hpp>
#include <relacy/thread_local.hpp>
#include <relacy/test_suite.hpp>
#include <relacy/dyn_thread.hpp>
#include <relacy/stdlib/mutex.hpp>
#include <relacy/stdlib/condition_variable.hpp>
#include <relacy/stdlib/semaphore.hpp>
#include <relacy/stdlib/event.hpp>

#include <atomic>

namespace ump::detail {
namespace model {

// Where an atomic operation was called from (default arguments are evaluated at the call).
struct site {
  rl::debug_info info;
  // NOLINTNEXTLINE(google-explicit-constructor)
  site(const char* fn = __builtin_FUNCTION(), const char* file = __builtin_FILE(),
       unsigned line = __builtin_LINE()) noexcept
      : info(fn, file, line) {}
};

constexpr rl::memory_order order(std::memory_order mo) noexcept {
  switch (mo) {
    case std::memory_order_relaxed:
      return rl::mo_relaxed;
    case std::memory_order_consume:
      return rl::mo_consume;
    case std::memory_order_acquire:
      return rl::mo_acquire;
    case std::memory_order_release:
      return rl::mo_release;
    case std::memory_order_acq_rel:
      return rl::mo_acq_rel;
    case std::memory_order_seq_cst:
      break;
  }
  return rl::mo_seq_cst;
}

}  // namespace model

template <class T>
class atomic {
 public:
  using site = model::site;
  static constexpr bool is_always_lock_free = true;

  // As std::atomic since C++20: value-initialised by default.
  atomic() noexcept : a_(T{}) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  atomic(T v) noexcept : a_(v) {}
  atomic(const atomic&) = delete;
  atomic& operator=(const atomic&) = delete;

  T load(std::memory_order mo = std::memory_order_seq_cst, site s = {}) const noexcept {
    return a_(s.info).load(model::order(mo));
  }
  void store(T v, std::memory_order mo = std::memory_order_seq_cst, site s = {}) noexcept {
    a_(s.info).store(v, model::order(mo));
  }
  T exchange(T v, std::memory_order mo = std::memory_order_seq_cst, site s = {}) noexcept {
    return a_(s.info).exchange(v, model::order(mo));
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order mo = std::memory_order_seq_cst,
                               site s = {}) noexcept {
    return a_(s.info).compare_exchange_strong(expected, desired, model::order(mo));
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success, std::memory_order failure,
                               site s = {}) noexcept {
    return a_(s.info).compare_exchange_strong(expected, desired, model::order(success), model::order(failure));
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order mo = std::memory_order_seq_cst,
                             site s = {}) noexcept {
    return a_(s.info).compare_exchange_weak(expected, desired, model::order(mo));
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success, std::memory_order failure,
                             site s = {}) noexcept {
    return a_(s.info).compare_exchange_weak(expected, desired, model::order(success), model::order(failure));
  }
  T fetch_add(T v, std::memory_order mo = std::memory_order_seq_cst, site s = {}) noexcept {
    return a_(s.info).fetch_add(v, model::order(mo));
  }
  T fetch_sub(T v, std::memory_order mo = std::memory_order_seq_cst, site s = {}) noexcept {
    return a_(s.info).fetch_sub(v, model::order(mo));
  }
  T fetch_and(T v, std::memory_order mo = std::memory_order_seq_cst, site s = {}) noexcept {
    return a_(s.info).fetch_and(v, model::order(mo));
  }
  T fetch_or(T v, std::memory_order mo = std::memory_order_seq_cst, site s = {}) noexcept {
    return a_(s.info).fetch_or(v, model::order(mo));
  }

 private:
  mutable rl::atomic<T> a_;
};

}  // namespace ump::detail

#endif  // UMP_MODEL_CHECK
