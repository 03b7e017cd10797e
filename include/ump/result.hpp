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
#pragma once

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
  void checked_app() const noexcept {
    UMP_ASSERT(app_.has_value(), "error::app() is only valid for errc::app_error");
  }
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

namespace detail {
[[noreturn]] void throw_bad_result_access(errc c);
}  // namespace detail

// Either a T or an error<E>. T may be void.
template <class T, class E = void>
class [[nodiscard]] result {
 public:
  using value_type = T;
  using error_type = ump::error<E>;

  // Effect: holds a value / an error.
  result(T v) : v_(std::in_place_index<0>, std::move(v)) {}  // NOLINT: implicit by design
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
  [[nodiscard]] const error_type& error() const& noexcept {
    return checked_error(), *std::get_if<1>(&v_);
  }
  [[nodiscard]] error_type&& error() && noexcept {
    return checked_error(), std::move(*std::get_if<1>(&v_));
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
class [[nodiscard]] result<void, E> {
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

}  // namespace ump
