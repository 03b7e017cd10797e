// Tests for ump/result.hpp: error codes, app errors and result access.
#include <doctest/doctest.h>

#include <string>

#include "ump/result.hpp"

TEST_CASE("result_holds_value_or_error") {
  ump::result<int, std::string> ok = 7;
  CHECK(ok.has_value());
  CHECK(*ok == 7);
  ump::result<int, std::string> bad = ump::error<std::string>(std::in_place, "boom");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == ump::errc::app_error);
  CHECK(bad.error().app() == "boom");
  ump::result<int> gone = ump::error<>(ump::errc::server_disappeared);
  CHECK(gone.error() == ump::errc::server_disappeared);
  CHECK(std::string(gone.error().what()) == "server disappeared");
}

#if defined(__cpp_exceptions)
TEST_CASE("value_on_error_throws_bad_result_access") {
  ump::result<int> r = ump::error<>(ump::errc::no_reply);
  CHECK_THROWS_AS((void)r.value(), ump::bad_result_access);
  ump::result<void> v = ump::error<>(ump::errc::timed_out);
  CHECK_THROWS_AS(v.value(), ump::bad_result_access);
}
#endif

TEST_CASE("every_errc_has_a_distinct_message") {
  using ump::errc;
  const errc all[] = {errc::server_disappeared, errc::clients_disappeared, errc::no_reply, errc::origin_disappeared,
                      errc::app_error,          errc::timed_out,           errc::cancelled};
  for (errc a : all)
    for (errc b : all)
      if (a != b) CHECK(std::string(ump::to_string(a)) != ump::to_string(b));
}

// The std::expected-style helpers. Each is checked on a value and on an error, on lvalues
// (nothing moved from) and rvalues (moved from), and for result<void>.
namespace {
using str_result = ump::result<std::string, std::string>;
ump::error<std::string> app(std::string s) { return ump::error<std::string>(std::in_place, std::move(s)); }
}  // namespace

TEST_CASE("value_or_returns_the_value_or_the_fallback") {
  const ump::result<int> ok = 3;
  const ump::result<int> bad = ump::error<>(ump::errc::no_reply);
  CHECK(ok.value_or(9) == 3);
  CHECK(bad.value_or(9) == 9);
  str_result moved = std::string(40, 'x');
  const std::string out = std::move(moved).value_or("fallback");
  CHECK(out == std::string(40, 'x'));
  CHECK(moved->empty());  // the rvalue form moved the value out
  str_result failed = app("e");
  CHECK(failed.value_or("fallback") == "fallback");
}

TEST_CASE("error_or_returns_the_error_or_the_fallback") {
  const ump::result<int> ok = 3;
  const ump::result<int> bad = ump::error<>(ump::errc::no_reply);
  CHECK(ok.error_or(ump::errc::timed_out) == ump::errc::timed_out);
  CHECK(bad.error_or(ump::errc::timed_out) == ump::errc::no_reply);
  const ump::result<void> vok;
  const ump::result<void> vbad = ump::error<>(ump::errc::server_disappeared);
  CHECK(vok.error_or(ump::errc::timed_out) == ump::errc::timed_out);
  CHECK(vbad.error_or(ump::errc::timed_out) == ump::errc::server_disappeared);
  str_result failed = app("why");
  CHECK(failed.error_or(app("other")).app() == "why");
}

TEST_CASE("and_then_chains_on_a_value_and_passes_an_error_through") {
  auto half = [](int x) -> ump::result<int> {
    if (x % 2 != 0) return ump::error<>(ump::errc::no_reply);
    return x / 2;
  };
  const ump::result<int> eight = 8;
  CHECK(*eight.and_then(half).and_then(half) == 2);
  CHECK(eight.and_then(half).and_then(half).and_then(half).and_then(half).error() == ump::errc::no_reply);
  const ump::result<int> gone = ump::error<>(ump::errc::server_disappeared);
  int calls = 0;
  auto counted = [&](int x) -> ump::result<int> { return ++calls, x; };
  CHECK(gone.and_then(counted).error() == ump::errc::server_disappeared);
  CHECK(calls == 0);
  // void: f takes nothing; the result type may change.
  ump::result<void> v;
  CHECK(*v.and_then([]() -> ump::result<int> { return 5; }) == 5);
  ump::result<void> vbad = ump::error<>(ump::errc::timed_out);
  CHECK(vbad.and_then([]() -> ump::result<int> { return 5; }).error() == ump::errc::timed_out);
  // rvalue: the value is moved into f.
  str_result s = std::string(40, 'y');
  auto r = std::move(s).and_then([](std::string&& x) -> ump::result<std::size_t, std::string> {
    std::string taken = std::move(x);
    return taken.size();
  });
  CHECK(*r == 40);
  CHECK(s->empty());
}

TEST_CASE("transform_maps_a_value_and_passes_an_error_through") {
  const ump::result<int> two = 2;
  const ump::result<std::string> text = two.transform([](int x) { return std::to_string(x * 10); });
  CHECK(*text == "20");
  const ump::result<int> bad = ump::error<>(ump::errc::no_reply);
  CHECK(bad.transform([](int x) { return x + 1; }).error() == ump::errc::no_reply);
  // To void and from void.
  int seen = 0;
  ump::result<void> done = two.transform([&](int x) { seen = x; });
  CHECK(done.has_value());
  CHECK(seen == 2);
  ump::result<void> v;
  CHECK(*v.transform([] { return 7; }) == 7);
  ump::result<void> vbad = ump::error<>(ump::errc::clients_disappeared);
  CHECK(vbad.transform([] { return 7; }).error() == ump::errc::clients_disappeared);
  // App errors keep their value.
  str_result failed = app("kept");
  CHECK(failed.transform([](const std::string& x) { return x.size(); }).error().app() == "kept");
}

TEST_CASE("or_else_recovers_from_an_error_and_passes_a_value_through") {
  const ump::result<int> bad = ump::error<>(ump::errc::timed_out);
  auto retry = [](const ump::error<>& e) -> ump::result<int> {
    if (e == ump::errc::timed_out) return 0;
    return e;
  };
  CHECK(*bad.or_else(retry) == 0);
  const ump::result<int> gone = ump::error<>(ump::errc::server_disappeared);
  CHECK(gone.or_else(retry).error() == ump::errc::server_disappeared);
  const ump::result<int> ok = 4;
  CHECK(*ok.or_else(retry) == 4);
  // The error type may change; void included.
  ump::result<void> vbad = ump::error<>(ump::errc::no_reply);
  ump::result<void, std::string> described =
      vbad.or_else([](const ump::error<>& e) -> ump::result<void, std::string> { return app(e.what()); });
  CHECK(described.error().app() == "no reply");
  ump::result<void> vok;
  CHECK(vok.or_else([](const ump::error<>&) -> ump::result<void, std::string> { return app("x"); }).has_value());
  // rvalue: the app error is moved into f.
  str_result failed = app(std::string(40, 'z'));
  auto r = std::move(failed).or_else([](ump::error<std::string>&& e) -> str_result {
    std::string taken = std::move(e).app();
    return taken;
  });
  CHECK(*r == std::string(40, 'z'));
}

TEST_CASE("transform_error_maps_an_error_and_passes_a_value_through") {
  auto to_text = [](const ump::error<>& e) { return app(e.what()); };
  const ump::result<int> bad = ump::error<>(ump::errc::origin_disappeared);
  const ump::result<int, std::string> mapped = bad.transform_error(to_text);
  CHECK(mapped.error().app() == "origin disappeared");
  const ump::result<int> ok = 6;
  CHECK(*ok.transform_error(to_text) == 6);
  ump::result<void> vbad = ump::error<>(ump::errc::no_reply);
  CHECK(vbad.transform_error(to_text).error().app() == "no reply");
  ump::result<void> vok;
  CHECK(vok.transform_error(to_text).has_value());
  // A protocol code can also be mapped to another protocol code.
  CHECK(bad.transform_error([](const ump::error<>&) { return ump::error<>(ump::errc::no_reply); }).error() ==
        ump::errc::no_reply);
}

TEST_CASE("reply_status_is_a_result_that_may_be_ignored") {
  ump::reply_status<> ok;
  CHECK(ok.delivered());
  ump::reply_status<> gone = ump::error<>(ump::errc::origin_disappeared);
  CHECK_FALSE(gone.delivered());
  CHECK(gone.error() == ump::errc::origin_disappeared);
  const ump::result<void>& as_result = gone;  // usable wherever a result<void> is
  CHECK(as_result.error_or(ump::errc::no_reply) == ump::errc::origin_disappeared);
}
