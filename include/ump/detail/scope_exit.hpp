// ump/detail/scope_exit.hpp — scope_exit: run a cleanup when a scope ends, unless dismissed.
//
// Internal. Used where a step must be undone on every path out of a function, including an
// exception from user code (a throwing move of a message or a reply).
#pragma once

#include <utility>

namespace ump::detail {

// Runs `f` at scope exit unless dismissed. Works with and without exceptions.
template <class F>
class scope_exit {
 public:
  explicit scope_exit(F f) noexcept : f_(std::move(f)) {}
  scope_exit(const scope_exit&) = delete;
  scope_exit& operator=(const scope_exit&) = delete;
  ~scope_exit() {
    if (armed_) f_();
  }
  void dismiss() noexcept { armed_ = false; }

 private:
  F f_;
  bool armed_ = true;
};

}  // namespace ump::detail
