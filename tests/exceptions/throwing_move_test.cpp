// Exception safety: payloads whose move constructor throws (ump_test::tracked::throw_on_move).
//
// What ump promises (client.hpp, reply_context.hpp, server.hpp, wait_reply.hpp):
//   * a request (or post) whose move into the channel throws was not sent: the exception
//     reaches the sender, the server's queue is unchanged, the next send works;
//   * a reply (or fail value) whose move throws inside reply()/fail(): the exception reaches
//     the replier, nothing was delivered, the context stays live (it can still answer, and
//     destroying it delivers no_reply): the requester never hangs;
//   * the message's move throwing while the server receives it: the exception reaches the
//     server's caller, the request's context is destroyed, so its requester gets no_reply.
// Several tests arm the failure on the 1st, 2nd, ... move in turn until an attempt makes no
// more moves than that, so every move on the path is exercised, however many there are
// (each_move_in_turn); operations that differ only in how they send or take a message run
// from a table.
//
// In -fno-exceptions builds (UMP_NO_EXCEPTIONS=ON) only the build-mode check below runs.
#include <doctest/doctest.h>

#include <optional>
#include <thread>
#include <utility>

#include "support/lifetime.hpp"
#include "ump/channel.hpp"
#include "ump/ng.hpp"

TEST_CASE("library_exception_mode_matches_compiler") {
#if defined(__cpp_exceptions)
  CHECK(UMP_HAS_EXCEPTIONS == 1);
#else
  CHECK(UMP_HAS_EXCEPTIONS == 0);
#endif
}

#if defined(__cpp_exceptions)

namespace {

using ump_test::move_failure;
using ump_test::tracked;

// Disarms the injected failure at scope exit, so a failed check never leaves it armed for
// the next test.
struct disarm_on_exit {
  disarm_on_exit() = default;
  disarm_on_exit(const disarm_on_exit&) = delete;
  disarm_on_exit& operator=(const disarm_on_exit&) = delete;
  ~disarm_on_exit() { tracked::throw_on_move(0); }
};

// Upper bound on the moves any single ump operation makes of one payload; the loops below
// stop at the first k that does not throw and fail if they get this far.
constexpr long max_moves = 16;

enum class attempt { completed, threw };

// Each move in turn: runs `try_with_failure_at(k)` for k = 1, 2, ... (up to max_moves).
// The attempt arms the failure on the k-th move itself, after its own setup, and reports
// whether it completed or caught the move_failure. Stops at the first attempt that
// completed; checks that one did, and that at least the first move was made, and threw.
template <class Attempt>
void each_move_in_turn(Attempt try_with_failure_at) {
  bool completed = false;
  long throws = 0;
  for (long k = 1; k <= max_moves && !completed; ++k) {
    CAPTURE(k);
    if (try_with_failure_at(k) == attempt::completed) {
      completed = true;
    } else {
      ++throws;
    }
  }
  CHECK(completed);
  CHECK(throws >= 1);  // at least the first move was made, and threw
}

}  // namespace

TEST_CASE("request_move_throws_sender_gets_exception_queue_unchanged") {
  ump_test::lifetime_check guard;
  disarm_on_exit disarm;
  auto [srv, cli] = ump::channel<tracked, tracked>();

  auto first = cli.req_async(tracked(1));  // already queued before the failures
  REQUIRE(first.valid());

  // The argument is built in place (no move); the first move is the one into the channel.
  using client_type = ump::client<tracked, tracked>;
  const struct {
    const char* name;
    void (*send)(client_type&);
  } sends[] = {
      {"req", [](client_type& c) { (void)c.req(tracked(2)); }},
      {"req_async", [](client_type& c) { (void)c.req_async(tracked(3)); }},
      {"areq", [](client_type& c) { (void)c.areq(tracked(4)); }},
  };
  for (const auto& row : sends) {
    CAPTURE(row.name);
    tracked::throw_on_move(1);
    CHECK_THROWS_AS(row.send(cli), move_failure);
  }
  CHECK(srv.queued() == 1);

  auto next = cli.req_async(tracked(5));  // the next send works
  REQUIRE(next.valid());
  CHECK(srv.queued() == 2);

  for (std::uint64_t expected : {1u, 5u}) {
    auto rq = srv.try_wait();
    REQUIRE(rq);
    REQUIRE(rq->has_value());
    CHECK((*rq)->msg.value() == expected);
    CHECK((*rq)->ctx.reply(tracked(expected * 10)).has_value());
  }
  auto none = srv.try_wait();
  REQUIRE(none);
  CHECK_FALSE(none->has_value());  // the server saw nothing of the failed sends

  auto r1 = first.wait();
  REQUIRE(r1);
  CHECK(r1->value() == 10);
  auto r5 = next.wait();
  REQUIRE(r5);
  CHECK(r5->value() == 50);
}

TEST_CASE("ng_post_and_request_move_throws_sender_gets_exception_queue_unchanged") {
  ump_test::lifetime_check guard;
  disarm_on_exit disarm;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked>();
  auto poster = cli.poster();

  using client_type = ump::ng::client<tracked, tracked, tracked>;
  using poster_type = decltype(poster);
  const struct {
    const char* name;
    void (*send)(client_type&, poster_type&);
  } sends[] = {
      {"client post", [](client_type& c, poster_type&) { (void)c.post(tracked(1)); }},
      {"post_client post", [](client_type&, poster_type& p) { (void)p.post(tracked(2)); }},
      {"req_async", [](client_type& c, poster_type&) { (void)c.req_async(tracked(3)); }},
  };
  for (const auto& row : sends) {
    CAPTURE(row.name);
    tracked::throw_on_move(1);
    CHECK_THROWS_AS(row.send(cli, poster), move_failure);
  }
  CHECK(srv.empty());

  REQUIRE(poster.post(tracked(4)));
  auto wr = cli.req_async(tracked(5));
  REQUIRE(wr.valid());
  CHECK(srv.queued() == 2);

  auto m1 = srv.wait();
  REQUIRE(m1);
  REQUIRE(m1->is_post());
  CHECK(m1->post().value() == 4);
  auto m2 = srv.wait();
  REQUIRE(m2);
  REQUIRE(m2->is_request());
  CHECK(m2->req().msg.value() == 5);
  CHECK(m2->req().ctx.reply(tracked(50)).has_value());
  CHECK(srv.empty());
  auto r = wr.wait();
  REQUIRE(r);
  CHECK(r->value() == 50);
}

TEST_CASE("request_move_throws_while_server_blocked_in_wait") {
  // The server is parked waiting; a failed send must neither wake it with nothing nor lose
  // the wake-up of the next, successful send.
  ump_test::lifetime_check guard;
  disarm_on_exit disarm;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  std::optional<std::uint64_t> received;
  std::thread server([&, s = std::move(srv)]() mutable {
    auto rq = s.wait();
    if (!rq) return;
    received = rq->msg.value();
    rq->ctx.reply(tracked(rq->msg.value() + 1));
  });
  tracked::throw_on_move(1);
  CHECK_THROWS_AS((void)cli.req(tracked(1)), move_failure);
  auto r = cli.req(tracked(2));
  server.join();
  REQUIRE(r);
  CHECK(r->value() == 3);
  REQUIRE(received);
  CHECK(*received == 2);
}

TEST_CASE("reply_move_throws_context_stays_live_each_move_in_turn") {
  ump_test::lifetime_check guard;
  disarm_on_exit disarm;
  auto ends = ump::channel<tracked, tracked>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  each_move_in_turn([&](long k) {
    auto wr = cli.req_async(tracked(static_cast<std::uint64_t>(k)));
    REQUIRE(wr.valid());
    auto rq = srv.wait();
    REQUIRE(rq);
    tracked::throw_on_move(k);
    try {
      auto sent = rq->ctx.reply(tracked(100));
      tracked::throw_on_move(0);  // no throw: disarm before anything else moves
      CHECK(sent.has_value());
      auto r = wr.wait();
      REQUIRE(r);
      CHECK(r->value() == 100);
      return attempt::completed;
    } catch (const move_failure&) {
      // Nothing was delivered and the context still owes an answer.
      CHECK(rq->ctx.pending());
      CHECK_FALSE(wr.ready());
      // It still works: answer now, on the second attempt.
      CHECK(rq->ctx.reply(tracked(200)).has_value());
      CHECK_FALSE(rq->ctx.pending());
      auto r = wr.wait();
      REQUIRE(r);
      CHECK(r->value() == 200);
      return attempt::threw;
    }
  });
  CHECK(srv.empty());
}

TEST_CASE("reply_move_throws_then_context_dropped_gives_no_reply_each_move_in_turn") {
  ump_test::lifetime_check guard;
  disarm_on_exit disarm;
  auto ends = ump::channel<tracked, tracked>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  each_move_in_turn([&](long k) {
    auto wr = cli.req_async(tracked(static_cast<std::uint64_t>(k)));
    REQUIRE(wr.valid());
    bool threw = false;
    {
      auto rq = srv.wait();
      REQUIRE(rq);
      tracked::throw_on_move(k);
      try {
        auto sent = rq->ctx.reply(tracked(100));
        tracked::throw_on_move(0);
        CHECK(sent.has_value());
      } catch (const move_failure&) {
        threw = true;
        CHECK(rq->ctx.pending());
      }
    }  // the request (and its live context, if the reply threw) is destroyed here
    auto r = wr.wait();
    if (threw) {
      REQUIRE_FALSE(r);
      CHECK(r.error().code() == ump::errc::no_reply);
    } else {
      REQUIRE(r);
      CHECK(r->value() == 100);
    }
    return threw ? attempt::threw : attempt::completed;
  });
}

TEST_CASE("fail_value_move_throws_context_stays_live_each_move_in_turn") {
  ump_test::lifetime_check guard;
  disarm_on_exit disarm;
  auto ends = ump::channel<tracked, tracked, tracked>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  each_move_in_turn([&](long k) {
    auto wr = cli.req_async(tracked(static_cast<std::uint64_t>(k)));
    REQUIRE(wr.valid());
    auto rq = srv.wait();
    REQUIRE(rq);
    tracked::throw_on_move(k);
    try {
      auto sent = rq->ctx.fail(tracked(7));
      tracked::throw_on_move(0);
      CHECK(sent.has_value());
      auto r = wr.wait();
      REQUIRE_FALSE(r);
      REQUIRE(r.error().code() == ump::errc::app_error);
      CHECK(r.error().app().value() == 7);
      return attempt::completed;
    } catch (const move_failure&) {
      CHECK(rq->ctx.pending());
      CHECK_FALSE(wr.ready());
      { auto dropped = std::move(rq->ctx); }  // the live context, destroyed unanswered
      auto r = wr.wait();
      REQUIRE_FALSE(r);
      CHECK(r.error().code() == ump::errc::no_reply);
      return attempt::threw;
    }
  });
}

TEST_CASE("reply_move_throws_while_requester_blocked_then_context_dropped_no_hang") {
  ump_test::lifetime_check guard;
  disarm_on_exit disarm;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  std::optional<ump::errc> outcome;
  std::thread client([&, c = cli]() mutable {
    auto r = c.req(tracked(1));
    outcome = r ? ump::errc{} : r.error().code();
  });
  {
    auto rq = srv.wait();
    REQUIRE(rq);
    tracked::throw_on_move(1);  // the client is blocked in req() and moves nothing meanwhile
    CHECK_THROWS_AS(rq->ctx.reply(tracked(2)), move_failure);
    CHECK(rq->ctx.pending());
  }  // the live context is destroyed: the blocked requester must wake with no_reply
  client.join();
  REQUIRE(outcome);
  CHECK(*outcome == ump::errc::no_reply);
}

TEST_CASE("reply_move_throws_while_requester_takes_it") {
  // The outcome's move out of the cell throws on the requester's side: the exception
  // reaches the requester, the outcome is destroyed, and the channel keeps working.
  ump_test::lifetime_check guard;
  disarm_on_exit disarm;
  auto ends = ump::channel<tracked, tracked>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  each_move_in_turn([&](long k) {
    auto wr = cli.req_async(tracked(1));
    REQUIRE(wr.valid());
    auto rq = srv.wait();
    REQUIRE(rq);
    CHECK(rq->ctx.reply(tracked(2)).has_value());
    REQUIRE(wr.ready());
    tracked::throw_on_move(k);
    try {
      auto r = wr.wait();
      tracked::throw_on_move(0);
      REQUIRE(r);
      CHECK(r->value() == 2);
      return attempt::completed;
    } catch (const move_failure&) {
      CHECK_FALSE(wr.valid());  // consumed: the outcome is gone, not left for a retry
      return attempt::threw;
    }
  });
}

TEST_CASE("message_move_throws_in_server_wait_requester_gets_no_reply_each_move_in_turn") {
  ump_test::lifetime_check guard;
  disarm_on_exit disarm;
  auto ends = ump::channel<tracked, tracked>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  using server_type = ump::server<tracked, tracked>;
  using request_type = ump::request<tracked, tracked>;
  // How the server takes the request; the failure is disarmed as soon as it returns.
  const struct {
    const char* name;
    void (*take)(server_type&, std::optional<request_type>&);
  } takes[] = {
      {"wait",
       [](server_type& s, std::optional<request_type>& rq) {
         auto r = s.wait();
         tracked::throw_on_move(0);
         REQUIRE(r);
         rq.emplace(std::move(*r));
       }},
      {"try_wait",
       [](server_type& s, std::optional<request_type>& rq) {
         auto r = s.try_wait();
         tracked::throw_on_move(0);
         REQUIRE(r);
         REQUIRE(r->has_value());
         rq.emplace(std::move(**r));
       }},
  };
  for (const auto& row : takes) {
    CAPTURE(row.name);
    each_move_in_turn([&](long k) {
      auto wr = cli.req_async(tracked(static_cast<std::uint64_t>(k)));
      REQUIRE(wr.valid());
      tracked::throw_on_move(k);
      try {
        std::optional<request_type> rq;
        row.take(srv, rq);
        CHECK(rq->msg.value() == static_cast<std::uint64_t>(k));
        CHECK(rq->ctx.reply(tracked(9)).has_value());
        auto r = wr.wait();
        REQUIRE(r);
        CHECK(r->value() == 9);
        return attempt::completed;
      } catch (const move_failure&) {
        // The request was taken off the queue, its message destroyed, its context dropped.
        CHECK(srv.empty());
        auto r = wr.wait();
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ump::errc::no_reply);
        return attempt::threw;
      }
    });
  }
}

TEST_CASE("ng_message_move_throws_in_server_wait_each_move_in_turn") {
  ump_test::lifetime_check guard;
  disarm_on_exit disarm;
  auto ends =
      ump::ng::channel<tracked, tracked, tracked>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  const struct {
    const char* name;
    bool is_post;
  } kinds[] = {{"post", true}, {"request", false}};
  for (const auto& row : kinds) {
    CAPTURE(row.name);
    each_move_in_turn([&](long k) {
      std::optional<ump::wait_reply<tracked>> wr;
      if (row.is_post) {
        REQUIRE(cli.post(tracked(static_cast<std::uint64_t>(k))));
      } else {
        auto w = cli.req_async(tracked(static_cast<std::uint64_t>(k)));
        REQUIRE(w.valid());
        wr.emplace(std::move(w));
      }
      tracked::throw_on_move(k);
      try {
        auto m = srv.wait();
        tracked::throw_on_move(0);
        REQUIRE(m);
        if (row.is_post) {
          REQUIRE(m->is_post());
          CHECK(m->post().value() == static_cast<std::uint64_t>(k));
        } else {
          REQUIRE(m->is_request());
          CHECK(m->req().msg.value() == static_cast<std::uint64_t>(k));
          CHECK(m->req().ctx.reply(tracked(9)).has_value());
          auto r = wr->wait();
          REQUIRE(r);
          CHECK(r->value() == 9);
        }
        return attempt::completed;
      } catch (const move_failure&) {
        CHECK(srv.empty());
        if (!row.is_post) {
          auto r = wr->wait();
          REQUIRE_FALSE(r);
          CHECK(r.error().code() == ump::errc::no_reply);
        }
        return attempt::threw;
      }
    });
  }
}

TEST_CASE("message_move_throws_in_server_wait_while_requester_blocked_no_hang") {
  ump_test::lifetime_check guard;
  disarm_on_exit disarm;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  std::optional<ump::errc> outcome;
  std::thread client([&, c = cli]() mutable {
    auto r = c.req(tracked(1));
    outcome = r ? ump::errc{} : r.error().code();
  });
  // Arm the failure only once the client's send has moved its message in (the request is
  // announced after that move); from then on the client moves nothing until it is answered.
  while (srv.queued() == 0) std::this_thread::yield();
  tracked::throw_on_move(1);  // the server's first move of the message out of the channel
  CHECK_THROWS_AS((void)srv.wait(), move_failure);
  client.join();
  REQUIRE(outcome);
  CHECK(*outcome == ump::errc::no_reply);
  // The server keeps working after the exception.
  auto wr = cli.req_async(tracked(2));
  REQUIRE(wr.valid());
  auto rq = srv.wait();
  REQUIRE(rq);
  CHECK(rq->ctx.reply(tracked(3)).has_value());
  auto r = wr.wait();
  REQUIRE(r);
  CHECK(r->value() == 3);
}

#endif  // __cpp_exceptions
