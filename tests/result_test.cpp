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
  const errc all[] = {errc::server_disappeared, errc::clients_disappeared, errc::no_reply,
                      errc::origin_disappeared, errc::app_error, errc::timed_out};
  for (errc a : all)
    for (errc b : all)
      if (a != b) CHECK(std::string(ump::to_string(a)) != ump::to_string(b));
}
