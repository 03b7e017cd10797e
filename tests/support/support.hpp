// Test support shared by tests/ and fuzz/: recording outcomes and owning coroutines.
//
//   failure(r)          the errc a result holds, or nullopt for a value: one comparison checks
//                       both "it failed" and "how" (CHECK(failure(cli.req(x)) == errc::...)).
//   eager_coroutine     a coroutine type that runs until its first suspension when called,
//                       then stays suspended at its end until its owner destroys it: tests
//                       ask done() at any point and can destroy it wherever it is suspended.
//   own(task)           runs a ump::task<void> inside an eager_coroutine.
//
// ump::task (ump/task.hpp) is the library's own coroutine type and stays lazy, as a user
// needs it; these types exist for tests that must hold a suspended frame themselves.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

#include "ump/result.hpp"
#include "ump/task.hpp"

namespace ump_test {

template <class T, class E>
std::optional<ump::errc> failure(const ump::result<T, E>& r) {
  if (r.has_value()) return std::nullopt;
  return r.error().code();
}

class eager_coroutine {
 public:
  struct promise_type {
    eager_coroutine get_return_object() noexcept {
      return eager_coroutine(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    // An exception escaping a test's own coroutine is a bug in the test.
    [[noreturn]] void unhandled_exception() const noexcept { std::terminate(); }
  };

  eager_coroutine() noexcept = default;
  eager_coroutine(eager_coroutine&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  eager_coroutine& operator=(eager_coroutine&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  eager_coroutine(const eager_coroutine&) = delete;
  eager_coroutine& operator=(const eager_coroutine&) = delete;
  ~eager_coroutine() { reset(); }

  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }
  [[nodiscard]] std::coroutine_handle<> handle() const noexcept { return h_; }
  // Only meaningful when nothing can resume the coroutine concurrently.
  [[nodiscard]] bool done() const noexcept { return h_ && h_.done(); }
  // Destroys the coroutine wherever it is suspended (running its locals' destructors),
  // without resuming it.
  void reset() noexcept {
    if (h_) std::exchange(h_, {}).destroy();
  }

 private:
  explicit eager_coroutine(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_{};
};

inline eager_coroutine own(ump::task<void> t) { co_await std::move(t); }

}  // namespace ump_test
