// ump/detail/access.hpp — access: the one door from ump's internals into its public types.
//
// Internal. Public types keep their constructors from internals and their cores private,
// and befriend this struct alone. The library (and its tests and adapters) reach them here.
#pragma once

#include <utility>

namespace ump::detail {

struct access {
  // The core of a public client or server (tests and adapters inside ump only).
  template <class T>
  static auto& core(T& x) noexcept {
    return x.core_;
  }
  // A public object built by one of its private constructors.
  template <class T, class... A>
  static T make(A&&... a) {
    return T(std::forward<A>(a)...);
  }
};

}  // namespace ump::detail
