// Tests for the adaptive spin budget in ump/detail/park.hpp (spin_until's per-thread
// governor). Each test runs on a fresh thread, so it starts from a full budget. Spins are
// made to fail (a poll that never succeeds: the budget runs out) or to succeed (a poll that
// succeeds at once); nothing here depends on how long anything takes.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "ump/detail/park.hpp"

namespace d = ump::detail;

namespace {

bool never(void*) noexcept { return false; }
bool always(void*) noexcept { return true; }

ump::wait_options short_budget(bool adaptive) {
  ump::wait_options o;
  o.spin = std::chrono::microseconds(20);
  o.spin_before_yield = std::chrono::microseconds(5);
  o.adaptive = adaptive;
  return o;
}

template <class F>
void on_fresh_thread(F f) {
  std::thread t(f);
  t.join();
}

}  // namespace

TEST_CASE("failed_spins_shrink_the_budget_down_to_the_floor") {
  on_fresh_thread([] {
    const auto o = short_budget(true);
    CHECK(d::spin_budget_shift() == 0);
    CHECK_FALSE(d::spin_until(&never, nullptr, o, {}));
    CHECK(d::spin_budget_shift() == 1);
    for (int i = 0; i < 20; ++i) (void)d::spin_until(&never, nullptr, o, {});
    CHECK(d::spin_budget_shift() == 6);
  });
}

TEST_CASE("successful_spin_grows_the_budget_back_one_step") {
  on_fresh_thread([] {
    const auto o = short_budget(true);
    for (int i = 0; i < 3; ++i) (void)d::spin_until(&never, nullptr, o, {});
    CHECK(d::spin_budget_shift() == 3);
    CHECK(d::spin_until(&always, nullptr, o, {}));
    CHECK(d::spin_budget_shift() == 2);
  });
}

TEST_CASE("successful_probe_restores_the_full_budget") {
  on_fresh_thread([] {
    const auto o = short_budget(true);
    for (int i = 0; i < 6; ++i) (void)d::spin_until(&never, nullptr, o, {});
    REQUIRE(d::spin_budget_shift() == 6);
    // Waits count towards a probe from the first shrink: the five above, ten more that fail
    // (the shift stays at its floor), then the 16th is a full-budget probe.
    for (int i = 0; i < 10; ++i) (void)d::spin_until(&never, nullptr, o, {});
    CHECK(d::spin_budget_shift() == 6);
    CHECK(d::spin_until(&always, nullptr, o, {}));  // the probe, and it succeeds
    CHECK(d::spin_budget_shift() == 0);
  });
}

TEST_CASE("fixed_budget_never_adapts") {
  on_fresh_thread([] {
    const auto o = short_budget(false);
    for (int i = 0; i < 5; ++i) CHECK_FALSE(d::spin_until(&never, nullptr, o, {}));
    CHECK(d::spin_budget_shift() == 0);
  });
}

TEST_CASE("spin_cut_by_the_callers_deadline_teaches_nothing") {
  on_fresh_thread([] {
    auto o = short_budget(true);
    o.spin = std::chrono::hours(1);  // only the deadline can end these spins
    const d::deadline past{d::clock::now()};
    for (int i = 0; i < 5; ++i) CHECK_FALSE(d::spin_until(&never, nullptr, o, past));
    CHECK(d::spin_budget_shift() == 0);
  });
}

TEST_CASE("zero_budget_never_spins_and_never_adapts") {
  on_fresh_thread([] {
    auto o = short_budget(true);
    o.spin = std::chrono::nanoseconds(0);
    CHECK_FALSE(d::spin_until(&always, nullptr, o, {}));  // returns before polling at all
    CHECK(d::spin_budget_shift() == 0);
  });
}
