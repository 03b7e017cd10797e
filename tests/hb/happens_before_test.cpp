// Happens-before edges that ump promises (semantics.md "Guarantees" and the memory-ordering
// paragraphs of client.hpp, server.hpp, reply_context.hpp and wait_reply.hpp), one test per
// edge. Each test writes a plain int on one thread just before an operation and reads it on
// another thread just after the matching observation, with nothing else ordering the two
// accesses (the writer thread was started before it wrote, the reader reads before joining
// it). Under ThreadSanitizer a missing edge is reported as a data race; in every build the
// value read is checked as well.
//
// Edges that differ only in how the server takes a request, or in how it answers one, run
// from a table (one SUBCASE per edge, named as its test was). Every edge runs with two wait
// budgets: spin 0 (every blocked waiter parks in the kernel,
// so the wake-up path carries the edge) and the default budget (the waiter usually sees the
// outcome while spinning).
//
// Not tested, because it is not promised: writes made by the server before it is destroyed
// are not promised to be visible to a client that then gets server_disappeared (a sender may
// reject on a relaxed load of the closed flag).
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <thread>
#include <utility>

#include "support/lifetime.hpp"
#include "ump/channel.hpp"
#include "ump/ng.hpp"

namespace {

ump::channel_options parking() {
  ump::channel_options o;
  o.waiting.spin = std::chrono::nanoseconds(0);
  o.waiting.spin_before_yield = std::chrono::nanoseconds(0);
  return o;
}

const ump::channel_options budgets[] = {parking(), ump::channel_options{}};

int rounds() { return ump_test::scaled(200); }

}  // namespace

// How the server takes a request. Both poll or block until the request is there; the edge
// under test is from the client's send to the server's return.
using int_server = ump::server<int, int>;
using int_request = ump::request<int, int>;
const struct {
  const char* name;
  int_request (*take)(int_server&);
} takes[] = {
    {"client_write_before_req_visible_after_server_wait",
     [](int_server& srv) {
       auto rq = srv.wait();
       REQUIRE(rq);
       return std::move(*rq);
     }},
    {"client_write_before_req_visible_after_server_try_wait",
     [](int_server& srv) {
       std::optional<int_request> got;
       while (!got) {
         auto r = srv.try_wait();
         REQUIRE(r);
         if (r->has_value()) {
           got.emplace(std::move(**r));
         } else {
           std::this_thread::yield();  // polling, not synchronising: try_wait decides
         }
       }
       return std::move(*got);
     }},
};

TEST_CASE("client_write_before_req_visible_after_server_takes_it") {
  for (const auto& row : takes) {
    SUBCASE(row.name) {
      for (const auto& opts : budgets) {
        auto [srv, cli] = ump::channel<int, int>(opts);
        for (int i = 0; i < rounds(); ++i) {
          int written = 0;
          bool sent_ok = false;
          std::thread client([&, c = cli]() mutable {
            written = i + 1;  // plain write before sending
            sent_ok = c.req(i).has_value();
          });
          auto rq = row.take(srv);
          CHECK(written == i + 1);  // plain read after the server received the request
          CHECK(rq.msg == i);
          CHECK(rq.ctx.reply(0).has_value());
          client.join();
          CHECK(sent_ok);
        }
      }
    }
  }
}

// How the server answers a request, after writing `written` (a plain int), and which
// outcome the requester must then see. The edge under test is from the write to the
// requester's return with that outcome.
using answer_request = ump::request<int, int, int>;
const struct {
  const char* name;
  int offset;  // the value written is i + offset
  void (*answer)(answer_request rq, int* written, int value, int i);
  bool (*expected)(const ump::result<int, int>& r, int i);
} answers[] = {
    {"server_write_before_reply_visible_after_req_returns", 7,
     [](answer_request rq, int* written, int value, int i) {
       *written = value;  // plain write before replying
       CHECK(rq.ctx.reply(i).has_value());
     },
     [](const ump::result<int, int>& r, int) { return r.has_value(); }},
    {"server_write_before_fail_visible_after_req_returns_app_error", 11,
     [](answer_request rq, int* written, int value, int i) {
       *written = value;
       CHECK(rq.ctx.fail(i).has_value());
     },
     [](const ump::result<int, int>& r, int i) {
       return !r && r.error().code() == ump::errc::app_error && r.error().app() == i;
     }},
    {"server_write_before_context_drop_visible_after_no_reply", 13,
     [](answer_request rq, int* written, int value, int) {
       *written = value;
       { auto dropped = std::move(rq); }  // the reply_context is destroyed unreplied here
     },
     [](const ump::result<int, int>& r, int) { return !r && r.error().code() == ump::errc::no_reply; }},
    {"replier_thread_write_before_reply_visible_after_req_returns", 17,
     [](answer_request rq, int* written, int value, int i) {
       bool reply_ok = false;
       std::thread replier([&, ctx = std::move(rq.ctx)]() mutable {
         *written = value;  // the third thread writes, then replies
         reply_ok = ctx.reply(i).has_value();
       });
       replier.join();
       CHECK(reply_ok);
     },
     [](const ump::result<int, int>& r, int) { return r.has_value(); }},
};

TEST_CASE("server_write_before_answer_visible_after_req_returns") {
  for (const auto& row : answers) {
    SUBCASE(row.name) {
      for (const auto& opts : budgets) {
        auto [srv, cli] = ump::channel<int, int, int>(opts);
        for (int i = 0; i < rounds(); ++i) {
          int written = 0;
          int seen = -1;
          std::thread client([&, c = cli]() mutable {
            auto r = c.req(i);
            seen = row.expected(r, i) ? written : -2;  // plain read after req returned
          });
          auto rq = srv.wait();
          REQUIRE(rq);
          row.answer(std::move(*rq), &written, i + row.offset, i);
          client.join();
          CHECK(seen == i + row.offset);
        }
      }
    }
  }
}

TEST_CASE("server_write_before_reply_visible_after_wait_reply_wait") {
  for (const auto& opts : budgets) {
    auto [srv, cli] = ump::channel<int, int>(opts);
    for (int i = 0; i < rounds(); ++i) {
      int to_server = 0;
      int to_client = 0;
      int seen = -1;
      std::thread client([&, c = cli]() mutable {
        to_server = i + 1;
        auto wr = c.req_async(i);
        if (!wr.valid()) return;
        auto r = wr.wait();  // blocking wait on the split request, no coroutine
        seen = r ? to_client : -2;
      });
      auto rq = srv.wait();
      REQUIRE(rq);
      CHECK(to_server == i + 1);
      to_client = i + 19;
      CHECK(rq->ctx.reply(i).has_value());
      client.join();
      CHECK(seen == i + 19);
    }
  }
}

TEST_CASE("ng_client_write_before_post_visible_after_server_wait") {
  for (const auto& opts : budgets) {
    auto [srv, cli] = ump::ng::channel<int, int, int>(opts);
    for (int i = 0; i < rounds(); ++i) {
      int written = 0;
      bool posted = false;
      std::thread client([&, c = cli]() mutable {
        written = i + 23;
        posted = c.post(i).has_value();
      });
      auto m = srv.wait();
      REQUIRE(m);
      REQUIRE(m->is_post());
      CHECK(m->post() == i);
      CHECK(written == i + 23);
      client.join();
      CHECK(posted);
    }
  }
}

TEST_CASE("ng_request_edges_both_ways") {
  for (const auto& opts : budgets) {
    auto [srv, cli] = ump::ng::channel<int, int, int>(opts);
    for (int i = 0; i < rounds(); ++i) {
      int to_server = 0;
      int to_client = 0;
      int seen = -1;
      std::thread client([&, c = cli]() mutable {
        to_server = i + 29;
        auto r = c.req(i);
        seen = r ? to_client : -2;
      });
      auto m = srv.wait();
      REQUIRE(m);
      REQUIRE(m->is_request());
      CHECK(to_server == i + 29);
      to_client = i + 31;
      CHECK(m->req().ctx.reply(i).has_value());
      client.join();
      CHECK(seen == i + 31);
    }
  }
}

TEST_CASE("last_clients_writes_before_drop_visible_after_clients_disappeared") {
  for (const auto& opts : budgets) {
    for (int i = 0; i < rounds(); ++i) {
      auto [srv, cli] = ump::channel<int, int>(opts);
      int written_a = 0;
      int written_b = 0;
      // Both threads own a strong client; whichever drops last makes the server see
      // clients_disappeared. Both writes must be visible then, not only the last dropper's.
      std::optional<ump::client<int, int>> a(cli);
      std::optional<ump::client<int, int>> b(std::move(cli));
      std::thread ta([&] {
        written_a = i + 37;
        a.reset();
      });
      std::thread tb([&] {
        written_b = i + 41;
        b.reset();
      });
      auto r = srv.wait();
      REQUIRE_FALSE(r);
      CHECK(r.error().code() == ump::errc::clients_disappeared);
      CHECK(written_a == i + 37);
      CHECK(written_b == i + 41);
      ta.join();
      tb.join();
    }
  }
}

TEST_CASE("ng_poster_write_before_drop_visible_after_clients_disappeared") {
  for (const auto& opts : budgets) {
    for (int i = 0; i < rounds(); ++i) {
      auto [srv, cli] = ump::ng::channel<int, int, int>(opts);
      int written = 0;
      std::optional<ump::ng::post_client<int, int, int>> poster(cli.poster());
      { auto gone = std::move(cli); }  // only the post client is left
      std::thread t([&] {
        written = i + 43;
        poster.reset();
      });
      auto r = srv.wait();
      REQUIRE_FALSE(r);
      CHECK(r.error().code() == ump::errc::clients_disappeared);
      CHECK(written == i + 43);
      t.join();
    }
  }
}
