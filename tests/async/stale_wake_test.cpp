// The stale wake-up of a coroutine server, pinned down without luck.
//
// A sender announces its message while the server coroutine is registered, so it owes the
// server a wake; it pays it only after releasing its producer. In that window a second
// sender wakes the server, which takes both messages and registers again. The first
// sender's late wake then claims a registration made after its own message was taken.
// Before the fix the coroutine resumed with nothing to take: an abort in debug builds, a
// garbage message or a crash in optimised ones. Each case below builds that interleaving
// step by step on one thread (client_core::send_unwoken is the first half of a send, the
// later wake_server() call its second half), in every build mode. The messages come from
// different client objects and must still be taken in send order (one FIFO per channel).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "async/helpers.hpp"
#include "ump/ng.hpp"
#include "ump/task.hpp"
#include "ump/ump.hpp"

// Failed checks print the vectors.
namespace doctest {
template <class T>
struct StringMaker<std::vector<T>> {
  static String convert(const std::vector<T>& v) {
    String s = "{";
    for (const auto& x : v) s += toString(x) + " ";
    return s + "}";
  }
};
}  // namespace doctest

namespace {

using ump::errc;
using ump::detail::access;
using ump_async_test::own;

// Takes requests until the clients are gone, answering msg + 100 and recording each message.
ump::task<void> recording_server(ump::server<int, int>& srv, std::vector<int>& seen, errc& end) {
  for (;;) {
    auto r = co_await srv.async_wait();
    if (!r) {
      end = r.error().code();
      co_return;
    }
    seen.push_back(r->msg);
    r->ctx.reply(r->msg + 100);
  }
}

TEST_CASE("stale_wake_after_server_rearmed_does_not_resume_it") {
  auto [srv, cli] = ump::channel<int, int>();
  std::vector<int> seen;
  errc end = errc::timed_out;
  auto task = own(recording_server(srv, seen, end));  // suspends in async_wait: registered

  // Sender A: announced while the server was registered, wake still owed.
  auto cli_a = cli;
  auto& core_a = access::core(cli_a);
  const auto a = core_a.send_unwoken(ump::detail::message_kind::request, 1);
  REQUIRE(a.node != nullptr);
  REQUIRE(a.wake);  // A saw the registration, so it owes the wake

  // Sender B wakes the server (inline: on this thread); it takes 1 and 2 and registers again.
  auto b = cli.req_async(2);
  REQUIRE(b.valid());
  CHECK(seen == std::vector<int>{1, 2});
  CHECK(*b.wait() == 102);

  // A pays its wake now: it claims the new registration, made after message 1 was taken.
  core_a.state()->wake_server();
  CHECK(seen == std::vector<int>{1, 2});  // nothing new: the coroutine must not have run

  // A's reply arrived when the server took message 1.
  ump::detail::pending_reply<int, void> pa(core_a.state(), a.node);
  CHECK(*pa.wait({}) == 101);

  // The server is still registered and takes the next message as usual.
  CHECK(*cli.req(3) == 103);
  CHECK(seen == std::vector<int>{1, 2, 3});
  { auto gone = std::move(cli); }
  { auto gone = std::move(cli_a); }
  CHECK(task.done());
  CHECK(end == errc::clients_disappeared);
}

TEST_CASE("stale_wake_racing_new_message_delivers_the_new_message_once") {
  auto [srv, cli] = ump::channel<int, int>();
  std::vector<int> seen;
  errc end = errc::timed_out;
  auto task = own(recording_server(srv, seen, end));

  auto cli_a = cli;
  auto cli_c = cli;
  const auto a = access::core(cli_a).send_unwoken(ump::detail::message_kind::request, 1);
  REQUIRE(a.wake);
  CHECK(*cli.req(2) == 102);  // B: server takes 1 and 2, registers again
  // C announces against the new registration and also owes a wake.
  const auto c = access::core(cli_c).send_unwoken(ump::detail::message_kind::request, 3);
  REQUIRE(c.wake);
  // A's stale wake comes first: message 3 is there, so the server runs and takes it.
  access::core(cli_a).state()->wake_server();
  CHECK(seen == std::vector<int>{1, 2, 3});
  // C's wake finds the flag already cleared by A's claim: nothing happens.
  access::core(cli_c).state()->wake_server();
  CHECK(seen == std::vector<int>{1, 2, 3});
  ump::detail::pending_reply<int, void> pa(access::core(cli_a).state(), a.node);
  ump::detail::pending_reply<int, void> pc(access::core(cli_c).state(), c.node);
  CHECK(*pa.wait({}) == 101);
  CHECK(*pc.wait({}) == 103);
  CHECK(*cli.req(4) == 104);
  CHECK(seen == std::vector<int>{1, 2, 3, 4});
  { auto gone = std::move(cli); }
  { auto gone1 = std::move(cli_a); }
  { auto gone2 = std::move(cli_c); }
  CHECK(task.done());
  CHECK(end == errc::clients_disappeared);
}

// ump::ng with posts: before the fix an optimised build read the empty envelope as a post
// (value 0) that nobody sent, or crashed for non-trivial posts.
template <class P>
ump::task<void> recording_ng_server(ump::ng::server<P, int, int>& srv, std::vector<P>& posts, errc& end) {
  for (;;) {
    auto m = co_await srv.async_wait();
    if (!m) {
      end = m.error().code();
      co_return;
    }
    if (m->is_post()) {
      posts.push_back(std::move(m->post()));
    } else {
      m->req().ctx.reply(m->req().msg);
    }
  }
}

TEST_CASE_TEMPLATE("stale_wake_of_ng_server_hands_out_no_phantom_post", P, int, std::string) {
  auto [srv, cli] = ump::ng::channel<P, int, int>();
  std::vector<P> posts;
  errc end = errc::timed_out;
  auto task = own(recording_ng_server(srv, posts, end));
  const auto make = [](int i) {
    if constexpr (std::is_same_v<P, std::string>) {
      return std::string(40, static_cast<char>('a' + i));  // too long for the small-string buffer
    } else {
      return i;
    }
  };

  auto cli_a = cli;
  const auto a = access::core(cli_a).send_unwoken(ump::detail::message_kind::post, std::in_place_index<0>, make(1));
  REQUIRE(a.wake);
  REQUIRE(cli.post(make(2)).has_value());  // wakes inline: the server takes both posts
  REQUIRE(posts.size() == 2);
  access::core(cli_a).state()->wake_server();  // stale
  CHECK(posts.size() == 2);
  REQUIRE(cli.post(make(3)).has_value());
  CHECK(posts == std::vector<P>{make(1), make(2), make(3)});
  { auto gone = std::move(cli); }
  { auto gone = std::move(cli_a); }
  CHECK(task.done());
  CHECK(end == errc::clients_disappeared);
}

}  // namespace
