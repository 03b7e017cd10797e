// ump/result.hpp — error values: errc, error<E>, result<T, E>.
//
// Every ump operation that can fail returns a result: either the value, or an error<E> that
// names what happened (errc) and, for errc::app_error, carries the application's own error
// value of type E (the channel's third type argument). Nothing in ump throws for a protocol
// outcome; exceptions only come from user types (a throwing move) or allocation failure.
//
// result<T, E> is ump's own small expected-like type. It does not depend on std::expected
// (C++23) or tl::expected, so every translation unit agrees on it with either compiler and in
// -fno-exceptions builds. value() on an error throws bad_result_access, or aborts with a
// message when exceptions are disabled; operator* on an error is a debug assertion.
//
// The monadic helpers follow std::expected (C++23), with one difference that comes from the
// error type being ump::error<E> rather than E itself:
//   value_or(v)          the value, or v converted to T                  (not for T = void)
//   error_or(g)          the error, or error<E>(g) when this holds a value (g: an errc or
//                        an error<E>)
//   and_then(f)          f(value) (f() for void) when this holds a value; f returns a
//                        result<U, E>. Otherwise that result type holding this error.
//   transform(f)         result<U, E> holding f(value) (f() for void; U may be void), or
//                        this error
//   or_else(f)           f(error) when this holds an error; f returns a result<T, G>.
//                        Otherwise that result type holding this value.
//   transform_error(f)   result<T, G> holding this value, or f(error), which must be an
//                        error<G>
// Each takes the result as an lvalue (copies what it forwards) or an rvalue (moves it).
// reply_context::reply() and fail() return reply_status<E>: the same result<void, E>, minus
// the [[nodiscard]], because a requester that stopped waiting is news the server may ignore.
#pragma once

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "ump/detail/config.hpp"

#if UMP_HAS_EXCEPTIONS
#include <exception>
#endif

namespace ump {

// What went wrong. Values are stable; more may be added.
enum class errc : unsigned char {
  server_disappeared = 1,  // the server was gone before it took the request (or the post)
  clients_disappeared,     // server side: the queue is empty and no strong client is left
  no_reply,                // the server dropped the reply_context without replying
  origin_disappeared,      // reply side: the requester stopped waiting; the reply was dropped
  app_error,               // the server called fail(e): error<E>::app() holds e
  timed_out,               // a wait with a deadline reached it
  cancelled,               // a wait given a std::stop_token saw stop requested first, or a
                           // request was cancelled (wait_reply::cancel, an adapter's cancel)
  full,                    // a bounded channel had no room and the sender would not wait
};

// A short, stable, lower-case description of `c` ("server disappeared", ...).
[[nodiscard]] const char* to_string(errc c) noexcept;

// An error: a code, plus the application's error value when code() == errc::app_error.
template <class E = void>
class error {
 public:
  // Effect: an error with a protocol code. Precondition: c != errc::app_error.
  explicit error(errc c) noexcept : code_(c) {
    UMP_ASSERT(c != errc::app_error, "an app_error carries a value: build it from E");
  }
  // Effect: an application error carrying `e`.
  explicit error(std::in_place_t, E e) : code_(errc::app_error), app_(std::move(e)) {}

  [[nodiscard]] errc code() const noexcept { return code_; }
  [[nodiscard]] bool is_app_error() const noexcept { return code_ == errc::app_error; }
  // The application's error value. Precondition: is_app_error().
  [[nodiscard]] E& app() & noexcept { return checked_app(), *app_; }
  [[nodiscard]] const E& app() const& noexcept { return checked_app(), *app_; }
  [[nodiscard]] E&& app() && noexcept { return checked_app(), std::move(*app_); }
  [[nodiscard]] const char* what() const noexcept { return to_string(code_); }

  friend bool operator==(const error& e, errc c) noexcept { return e.code_ == c; }

 private:
  void checked_app() const noexcept { UMP_ASSERT(app_.has_value(), "error::app() is only valid for errc::app_error"); }
  errc code_;
  std::optional<E> app_;
};

template <>
class error<void> {
 public:
  explicit error(errc c) noexcept : code_(c) {
    UMP_ASSERT(c != errc::app_error, "a channel with E = void has no app errors");
  }
  [[nodiscard]] errc code() const noexcept { return code_; }
  [[nodiscard]] bool is_app_error() const noexcept { return false; }
  [[nodiscard]] const char* what() const noexcept { return to_string(code_); }
  friend bool operator==(const error& e, errc c) noexcept { return e.code_ == c; }

 private:
  errc code_;
};

#if UMP_HAS_EXCEPTIONS
// Thrown by result::value() when the result holds an error.
class bad_result_access : public std::exception {
 public:
  explicit bad_result_access(errc c) noexcept : code_(c) {}
  [[nodiscard]] errc code() const noexcept { return code_; }
  [[nodiscard]] const char* what() const noexcept override { return to_string(code_); }

 private:
  errc code_;
};
#endif

template <class T, class E = void>
class result;

namespace detail {
[[noreturn]] void throw_bad_result_access(errc c);

template <class X>
struct result_traits {
  static constexpr bool is_result = false;
};
template <class T, class E>
struct result_traits<result<T, E>> {
  static constexpr bool is_result = true;
  using value_type = T;
  using app_error_type = E;
};
template <class X>
struct error_traits {
  static constexpr bool is_error = false;
};
template <class G>
struct error_traits<error<G>> {
  static constexpr bool is_error = true;
  using app_error_type = G;
};

// The monadic helpers, written once for every value category (Self is a result<T, E>
// reference: lvalue helpers copy what they forward, rvalue helpers move it) and for void.
template <class Self>
using value_of = typename std::remove_cvref_t<Self>::value_type;
template <class Self>
using app_error_of = typename result_traits<std::remove_cvref_t<Self>>::app_error_type;

// The value of `self` as its value category says (Precondition: self holds a value).
template <class Self>
decltype(auto) forward_value(Self&& self) noexcept {
  return *std::forward<Self>(self);
}

template <class Self, class F>
auto and_then(Self&& self, F&& f) {
  if constexpr (std::is_void_v<value_of<Self>>) {
    using U = std::remove_cvref_t<std::invoke_result_t<F>>;
    static_assert(result_traits<U>::is_result, "and_then: f must return a ump::result");
    static_assert(std::is_same_v<typename U::error_type, typename std::remove_cvref_t<Self>::error_type>,
                  "and_then: f must return a result with the same error type");
    if (self.has_value()) return std::invoke(std::forward<F>(f));
    return U(std::forward<Self>(self).error());
  } else {
    using U = std::remove_cvref_t<std::invoke_result_t<F, decltype(forward_value(std::forward<Self>(self)))>>;
    static_assert(result_traits<U>::is_result, "and_then: f must return a ump::result");
    static_assert(std::is_same_v<typename U::error_type, typename std::remove_cvref_t<Self>::error_type>,
                  "and_then: f must return a result with the same error type");
    if (self.has_value()) return std::invoke(std::forward<F>(f), forward_value(std::forward<Self>(self)));
    return U(std::forward<Self>(self).error());
  }
}

template <class Self, class F>
auto transform(Self&& self, F&& f) {
  using E = app_error_of<Self>;
  if constexpr (std::is_void_v<value_of<Self>>) {
    using U = std::remove_cv_t<std::invoke_result_t<F>>;
    if (!self.has_value()) return result<U, E>(std::forward<Self>(self).error());
    if constexpr (std::is_void_v<U>) {
      std::invoke(std::forward<F>(f));
      return result<U, E>();
    } else {
      return result<U, E>(std::invoke(std::forward<F>(f)));
    }
  } else {
    using V = decltype(forward_value(std::forward<Self>(self)));
    using U = std::remove_cv_t<std::invoke_result_t<F, V>>;
    if (!self.has_value()) return result<U, E>(std::forward<Self>(self).error());
    if constexpr (std::is_void_v<U>) {
      std::invoke(std::forward<F>(f), forward_value(std::forward<Self>(self)));
      return result<U, E>();
    } else {
      return result<U, E>(std::invoke(std::forward<F>(f), forward_value(std::forward<Self>(self))));
    }
  }
}

template <class Self, class F>
auto or_else(Self&& self, F&& f) {
  using G = std::remove_cvref_t<std::invoke_result_t<F, decltype(std::forward<Self>(self).error())>>;
  static_assert(result_traits<G>::is_result, "or_else: f must return a ump::result");
  static_assert(std::is_same_v<typename G::value_type, value_of<Self>>,
                "or_else: f must return a result with the same value type");
  if (self.has_value()) {
    if constexpr (std::is_void_v<value_of<Self>>) {
      return G();
    } else {
      return G(forward_value(std::forward<Self>(self)));
    }
  }
  return std::invoke(std::forward<F>(f), std::forward<Self>(self).error());
}

template <class Self, class F>
auto transform_error(Self&& self, F&& f) {
  using G = std::remove_cv_t<std::invoke_result_t<F, decltype(std::forward<Self>(self).error())>>;
  static_assert(error_traits<G>::is_error, "transform_error: f must return a ump::error<G>");
  using out = result<value_of<Self>, typename error_traits<G>::app_error_type>;
  if (!self.has_value()) return out(std::invoke(std::forward<F>(f), std::forward<Self>(self).error()));
  if constexpr (std::is_void_v<value_of<Self>>) {
    return out();
  } else {
    return out(forward_value(std::forward<Self>(self)));
  }
}

template <class Self, class G>
auto error_or(Self&& self, G&& g) {
  using error_type = typename std::remove_cvref_t<Self>::error_type;
  if (self.has_value()) return static_cast<error_type>(std::forward<G>(g));
  return error_type(std::forward<Self>(self).error());
}
}  // namespace detail

namespace detail {
// The helpers as members, for each value category (CRTP base of both result classes).
template <class Derived>
class result_ops {
 public:
  template <class F>
  auto and_then(F&& f) & {
    return detail::and_then(self(), std::forward<F>(f));
  }
  template <class F>
  auto and_then(F&& f) const& {
    return detail::and_then(self(), std::forward<F>(f));
  }
  template <class F>
  auto and_then(F&& f) && {
    return detail::and_then(std::move(self()), std::forward<F>(f));
  }
  template <class F>
  auto transform(F&& f) & {
    return detail::transform(self(), std::forward<F>(f));
  }
  template <class F>
  auto transform(F&& f) const& {
    return detail::transform(self(), std::forward<F>(f));
  }
  template <class F>
  auto transform(F&& f) && {
    return detail::transform(std::move(self()), std::forward<F>(f));
  }
  template <class F>
  auto or_else(F&& f) & {
    return detail::or_else(self(), std::forward<F>(f));
  }
  template <class F>
  auto or_else(F&& f) const& {
    return detail::or_else(self(), std::forward<F>(f));
  }
  template <class F>
  auto or_else(F&& f) && {
    return detail::or_else(std::move(self()), std::forward<F>(f));
  }
  template <class F>
  auto transform_error(F&& f) & {
    return detail::transform_error(self(), std::forward<F>(f));
  }
  template <class F>
  auto transform_error(F&& f) const& {
    return detail::transform_error(self(), std::forward<F>(f));
  }
  template <class F>
  auto transform_error(F&& f) && {
    return detail::transform_error(std::move(self()), std::forward<F>(f));
  }
  template <class G>
  [[nodiscard]] auto error_or(G&& g) const& {
    return detail::error_or(self(), std::forward<G>(g));
  }
  template <class G>
  [[nodiscard]] auto error_or(G&& g) && {
    return detail::error_or(std::move(self()), std::forward<G>(g));
  }

 private:
  Derived& self() & noexcept { return static_cast<Derived&>(*this); }
  const Derived& self() const& noexcept { return static_cast<const Derived&>(*this); }
};
}  // namespace detail

// Either a T or an error<E>. T may be void.
template <class T, class E>
class [[nodiscard]] result : public detail::result_ops<result<T, E>> {
 public:
  using value_type = T;
  using error_type = ump::error<E>;

  // Effect: holds a value / an error.
  result(T v) : v_(std::in_place_index<0>, std::move(v)) {}           // NOLINT: implicit by design
  result(error_type e) : v_(std::in_place_index<1>, std::move(e)) {}  // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  // The value. Precondition (debug-checked): has_value().
  [[nodiscard]] T& operator*() & noexcept { return checked(), *std::get_if<0>(&v_); }
  [[nodiscard]] const T& operator*() const& noexcept { return checked(), *std::get_if<0>(&v_); }
  [[nodiscard]] T&& operator*() && noexcept { return checked(), std::move(*std::get_if<0>(&v_)); }
  [[nodiscard]] T* operator->() noexcept { return checked(), std::get_if<0>(&v_); }
  [[nodiscard]] const T* operator->() const noexcept { return checked(), std::get_if<0>(&v_); }

  // The value, or bad_result_access (abort without exceptions) when this holds an error.
  [[nodiscard]] T& value() & { return ensure(), *std::get_if<0>(&v_); }
  [[nodiscard]] const T& value() const& { return ensure(), *std::get_if<0>(&v_); }
  [[nodiscard]] T&& value() && { return ensure(), std::move(*std::get_if<0>(&v_)); }

  // The error. Precondition (debug-checked): !has_value().
  [[nodiscard]] error_type& error() & noexcept { return checked_error(), *std::get_if<1>(&v_); }
  [[nodiscard]] const error_type& error() const& noexcept { return checked_error(), *std::get_if<1>(&v_); }
  [[nodiscard]] error_type&& error() && noexcept { return checked_error(), std::move(*std::get_if<1>(&v_)); }

  // The value, or `v` converted to T when this holds an error.
  template <class U>
  [[nodiscard]] T value_or(U&& v) const& {
    return has_value() ? *std::get_if<0>(&v_) : static_cast<T>(std::forward<U>(v));
  }
  template <class U>
  [[nodiscard]] T value_or(U&& v) && {
    return has_value() ? std::move(*std::get_if<0>(&v_)) : static_cast<T>(std::forward<U>(v));
  }

 private:
  void checked() const noexcept { UMP_ASSERT(has_value(), "result dereferenced while it holds an error"); }
  void checked_error() const noexcept { UMP_ASSERT(!has_value(), "result::error() called on a value"); }
  void ensure() const {
    if (!has_value()) detail::throw_bad_result_access(std::get_if<1>(&v_)->code());
  }
  std::variant<T, error_type> v_;
};

template <class E>
class [[nodiscard]] result<void, E> : public detail::result_ops<result<void, E>> {
 public:
  using value_type = void;
  using error_type = ump::error<E>;

  result() noexcept = default;
  result(error_type e) : e_(std::move(e)) {}  // NOLINT: implicit by design

  [[nodiscard]] bool has_value() const noexcept { return !e_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  void operator*() const noexcept { UMP_ASSERT(has_value(), "result dereferenced while it holds an error"); }
  void value() const {
    if (e_) detail::throw_bad_result_access(e_->code());
  }
  [[nodiscard]] error_type& error() & noexcept { return checked_error(), *e_; }
  [[nodiscard]] const error_type& error() const& noexcept { return checked_error(), *e_; }
  [[nodiscard]] error_type&& error() && noexcept { return checked_error(), std::move(*e_); }

 private:
  void checked_error() const noexcept { UMP_ASSERT(e_.has_value(), "result::error() called on a value"); }
  std::optional<error_type> e_;
};

// What reply_context::reply() and fail() return: success, or errc::origin_disappeared when
// the requester stopped waiting (the reply was destroyed). It is a result<void, E> that may
// be ignored without a cast: the server usually has nothing to do about it.
template <class E = void>
class reply_status : public result<void, E> {
 public:
  using result<void, E>::result;
  reply_status(result<void, E> r) noexcept(std::is_nothrow_move_constructible_v<result<void, E>>)  // NOLINT
      : result<void, E>(std::move(r)) {}
  // True if the reply reached a waiting requester.
  [[nodiscard]] bool delivered() const noexcept { return this->has_value(); }
};

}  // namespace ump
