// Tests that unusual message, reply and error types travel through a channel intact: move-only,
// not default-constructible, empty, over-aligned (alignas(64)), large (32 KiB), E = void,
// E = std::string and R = std::unique_ptr. Each one makes a full round trip: a client thread
// blocked in req(), a server thread that receives and answers.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "support/lifetime.hpp"
#include "ump/ng.hpp"
#include "ump/ump.hpp"

using ump_test::lifetime_check;
using ump_test::tracked;

namespace {

// Runs one request through a fresh channel: the requester blocks in req() on its own thread,
// this thread serves with `answer(S&, reply_context&&)`. Returns the requester's outcome.
template <class S, class R, class E, class MakeS, class Answer>
ump::result<R, E> round_trip(MakeS make_s, Answer answer) {
  auto [srv, cli] = ump::channel<S, R, E>();
  std::optional<ump::result<R, E>> outcome;
  std::thread requester([&c = cli, &outcome, &make_s] { outcome.emplace(c.req(make_s())); });
  {
    auto r = srv.wait();
    REQUIRE(r.has_value());
    answer(r->msg, std::move(r->ctx));
  }
  requester.join();
  REQUIRE(outcome.has_value());
  return std::move(*outcome);
}

// --- move-only ---------------------------------------------------------------------------
struct move_only {
  explicit move_only(int v) : p(std::make_unique<int>(v)) {}
  move_only(move_only&&) noexcept = default;
  move_only& operator=(move_only&&) noexcept = default;
  std::unique_ptr<int> p;
  tracked t{0};
};
static_assert(!std::is_copy_constructible_v<move_only>);

// --- not default-constructible -------------------------------------------------------------
class no_default {
 public:
  no_default() = delete;
  explicit no_default(std::uint64_t v) : t_(v) {}
  [[nodiscard]] std::uint64_t value() const noexcept { return t_.value(); }

 private:
  tracked t_;
};
static_assert(!std::is_default_constructible_v<no_default>);

// --- empty --------------------------------------------------------------------------------
struct empty_msg {};
static_assert(std::is_empty_v<empty_msg>);

// --- over-aligned -------------------------------------------------------------------------
// Records every address it is constructed at or moved from (which covers the copy inside the
// channel's node): any that is not 64-byte aligned is counted.
struct alignas(64) over_aligned {
  explicit over_aligned(std::uint64_t v) : t(v) { note(this); }
  over_aligned(over_aligned&& o) noexcept : t(std::move(o.t)) {
    note(this);
    note(&o);
  }
  over_aligned& operator=(over_aligned&&) = delete;
  static void note(const void* p) noexcept {
    if (reinterpret_cast<std::uintptr_t>(p) % 64 != 0)
      // ORDERING: relaxed; read after the threads are joined.
      misaligned.fetch_add(1, std::memory_order_relaxed);
  }
  tracked t;
  static inline std::atomic<int> misaligned{0};
};
static_assert(alignof(over_aligned) == 64);

bool aligned64(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

// --- large --------------------------------------------------------------------------------
struct big {
  explicit big(std::uint8_t seed) : t(seed) {
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(seed + i * 7);
  }
  [[nodiscard]] bool intact() const noexcept {
    const auto seed = static_cast<std::uint8_t>(t.value());
    for (std::size_t i = 0; i < bytes.size(); ++i)
      if (bytes[i] != static_cast<std::uint8_t>(seed + i * 7)) return false;
    return true;
  }
  std::array<std::uint8_t, 32 * 1024> bytes{};
  tracked t;
};
static_assert(sizeof(big) >= 32 * 1024);

template <class C>
concept can_fail = requires(C c) {
  c.fail(0);
};

}  // namespace

TEST_CASE("move_only_payload_round_trip") {
  lifetime_check guard;
  auto out = round_trip<move_only, move_only, move_only>([] { return move_only(5); },
                                                         [](move_only& m, auto ctx) {
                                                           CHECK(*m.p == 5);
                                                           CHECK(ctx.reply(move_only(*m.p + 1)).has_value());
                                                         });
  REQUIRE(out.has_value());
  REQUIRE(out->p != nullptr);
  CHECK(*out->p == 6);
  // And as the app error.
  auto err = round_trip<move_only, move_only, move_only>(
      [] { return move_only(1); }, [](move_only&, auto ctx) { CHECK(ctx.fail(move_only(9)).has_value()); });
  REQUIRE_FALSE(err.has_value());
  REQUIRE(err.error().is_app_error());
  CHECK(*err.error().app().p == 9);
}

TEST_CASE("non_default_constructible_payload_round_trip") {
  lifetime_check guard;
  auto out = round_trip<no_default, no_default, no_default>([] { return no_default(3); },
                                                            [](no_default& m, auto ctx) {
                                                              CHECK(m.value() == 3);
                                                              CHECK(ctx.reply(no_default(m.value() * 2)).has_value());
                                                            });
  REQUIRE(out.has_value());
  CHECK(out->value() == 6);
  auto err = round_trip<no_default, no_default, no_default>(
      [] { return no_default(3); }, [](no_default&, auto ctx) { CHECK(ctx.fail(no_default(4)).has_value()); });
  REQUIRE_FALSE(err.has_value());
  CHECK(err.error().app().value() == 4);
}

TEST_CASE("empty_struct_payload_round_trip") {
  int served = 0;
  auto out = round_trip<empty_msg, empty_msg, empty_msg>([] { return empty_msg{}; },
                                                         [&](empty_msg&, auto ctx) {
                                                           ++served;
                                                           CHECK(ctx.reply(empty_msg{}).has_value());
                                                         });
  CHECK(out.has_value());
  CHECK(served == 1);
  auto err = round_trip<empty_msg, empty_msg, empty_msg>(
      [] { return empty_msg{}; }, [](empty_msg&, auto ctx) { CHECK(ctx.fail(empty_msg{}).has_value()); });
  REQUIRE_FALSE(err.has_value());
  CHECK(err.error().is_app_error());
}

TEST_CASE("over_aligned_payload_round_trip") {
  lifetime_check guard;
  over_aligned::misaligned.store(0);
  bool received_aligned = false;
  auto out = round_trip<over_aligned, over_aligned, int>([] { return over_aligned(11); },
                                                         [&](over_aligned& m, auto ctx) {
                                                           received_aligned = aligned64(&m);
                                                           CHECK(m.t.value() == 11);
                                                           CHECK(ctx.reply(over_aligned(12)).has_value());
                                                         });
  REQUIRE(out.has_value());
  CHECK(received_aligned);
  CHECK(aligned64(&*out));
  CHECK(out->t.value() == 12);

  // Many in flight at once, so several nodes (fresh and recycled) carry one.
  auto [srv, cli] = ump::channel<over_aligned, over_aligned>();
  std::thread server([&s = srv] {
    for (;;) {
      auto r = s.wait();
      if (!r.has_value()) return;
      if (!aligned64(&r->msg)) over_aligned::misaligned.fetch_add(1, std::memory_order_relaxed);
      r->ctx.reply(over_aligned(r->msg.t.value() + 1));
    }
  });
  int wrong = 0;
  for (int round = 0; round < 10; ++round) {
    std::optional<ump::wait_reply<over_aligned>> pending[8];
    for (int i = 0; i < 8; ++i) {
      auto w = cli.req_async(over_aligned(static_cast<std::uint64_t>(i)));
      REQUIRE(w.valid());
      pending[i].emplace(std::move(w));
    }
    for (int i = 0; i < 8; ++i) {
      auto r = pending[i]->wait();
      if (!r.has_value() || r->t.value() != static_cast<std::uint64_t>(i) + 1 || !aligned64(&*r)) ++wrong;
    }
  }
  { auto gone = std::move(cli); }
  server.join();
  CHECK(wrong == 0);
  CHECK(over_aligned::misaligned.load() == 0);
}

TEST_CASE("large_32k_payload_round_trip") {
  lifetime_check guard;
  auto out = round_trip<big, big, int>([] { return big(3); },
                                       [](big& m, auto ctx) {
                                         CHECK(m.intact());
                                         CHECK(m.t.value() == 3);
                                         CHECK(ctx.reply(big(200)).has_value());
                                       });
  REQUIRE(out.has_value());
  CHECK(out->t.value() == 200);
  CHECK(out->intact());
}

TEST_CASE("void_error_channel_round_trip") {
  // E = void: fail() does not exist; app errors cannot be expressed.
  static_assert(!can_fail<ump::reply_context<int, void>>);
  static_assert(can_fail<ump::reply_context<int, int>>);
  auto out =
      round_trip<int, int, void>([] { return 20; }, [](int& m, auto ctx) { CHECK(ctx.reply(m + 1).has_value()); });
  REQUIRE(out.has_value());
  CHECK(*out == 21);
  auto none = round_trip<int, int, void>([] { return 1; }, [](int&, auto ctx) { auto dropped = std::move(ctx); });
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().code() == ump::errc::no_reply);
  CHECK_FALSE(none.error().is_app_error());
}

TEST_CASE("string_app_error_round_trip") {
  const std::string long_text(1000, 'e');
  auto err = round_trip<std::string, std::string, std::string>([] { return std::string("question"); },
                                                               [&](std::string& m, auto ctx) {
                                                                 CHECK(m == "question");
                                                                 CHECK(ctx.fail(long_text).has_value());
                                                               });
  REQUIRE_FALSE(err.has_value());
  REQUIRE(err.error().code() == ump::errc::app_error);
  CHECK(err.error().app() == long_text);
  auto out = round_trip<std::string, std::string, std::string>(
      [] { return std::string("ping"); }, [](std::string& m, auto ctx) { CHECK(ctx.reply(m + "/pong").has_value()); });
  REQUIRE(out.has_value());
  CHECK(*out == "ping/pong");
}

TEST_CASE("unique_ptr_reply_round_trip") {
  auto out = round_trip<int, std::unique_ptr<int>, void>(
      [] { return 41; }, [](int& m, auto ctx) { CHECK(ctx.reply(std::make_unique<int>(m + 1)).has_value()); });
  REQUIRE(out.has_value());
  REQUIRE(*out != nullptr);
  CHECK(**out == 42);
  // A null unique_ptr is a value like any other.
  auto null = round_trip<int, std::unique_ptr<int>, void>(
      [] { return 0; }, [](int&, auto ctx) { CHECK(ctx.reply(nullptr).has_value()); });
  REQUIRE(null.has_value());
  CHECK(*null == nullptr);
}

TEST_CASE("unusual_payloads_through_ng_posts") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<big, over_aligned, std::unique_ptr<int>, std::string>();
  over_aligned::misaligned.store(0);
  REQUIRE(cli.post(big(9)).has_value());
  auto w = cli.req_async(over_aligned(4));
  REQUIRE(w.valid());
  auto p = srv.wait();
  REQUIRE(p.has_value());
  REQUIRE(p->is_post());
  CHECK(p->post().intact());
  auto q = srv.wait();
  REQUIRE(q.has_value());
  REQUIRE(q->is_request());
  CHECK(aligned64(&q->req().msg));
  CHECK(q->req().ctx.reply(std::make_unique<int>(4)).has_value());
  auto out = w.wait();
  REQUIRE(out.has_value());
  CHECK(**out == 4);
  CHECK(over_aligned::misaligned.load() == 0);
}
