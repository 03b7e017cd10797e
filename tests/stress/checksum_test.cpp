// Stress: K threads × M requests against one server thread, more threads than this machine
// has cores so that preemption lands inside the protocol. Each request carries a distinct
// value, each reply is f(value). Every reply is checked on arrival; per-thread sums of the
// replies match what the thread expected; the server's sums of everything it received and
// sent match the totals of all threads. Variants: a client copy per thread, one client
// object shared by all threads, and a copy per thread mixing blocking and pipelined
// requests. The values are deterministic, so a failure replays as is.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "ump/ump.hpp"

using ump_test::lifetime_check;
using ump_test::tracked;

namespace {

using client_t = ump::client<tracked, tracked, int>;

std::uint64_t f(std::uint64_t v) {
  v ^= v >> 31;
  v *= 0x9e3779b97f4a7c15ULL;
  return v ^ (v >> 29);
}

std::uint64_t value_of(int thread, int i) {
  return (static_cast<std::uint64_t>(thread) << 32) | static_cast<std::uint64_t>(i);
}

enum class mode { own_client, shared_client, pipelined };

struct thread_sums {
  std::uint64_t expected = 0;  // sum of f(v) over the values this thread sent
  std::uint64_t replied = 0;   // sum of the replies it received
  int wrong = 0;               // replies that were errors or not f(v)
  int answered = 0;
};

// One client thread: M requests, checking each reply.
void run_client(client_t& c, int thread, int m, mode how, thread_sums& out) {
  auto check = [&](std::uint64_t v, ump::result<tracked, int>&& r) {
    out.expected += f(v);
    if (!r.has_value() || r->value() != f(v)) {
      ++out.wrong;
      return;
    }
    out.replied += r->value();
    ++out.answered;
  };
  if (how != mode::pipelined) {
    for (int i = 0; i < m; ++i) {
      const std::uint64_t v = value_of(thread, i);
      check(v, c.req(tracked(v)));
    }
    return;
  }
  // Up to 8 requests in flight; every seventh request is a blocking one in between.
  std::deque<std::pair<std::uint64_t, ump::wait_reply<tracked, int>>> window;
  for (int i = 0; i < m; ++i) {
    const std::uint64_t v = value_of(thread, i);
    if (i % 7 == 6) {
      check(v, c.req(tracked(v)));
      continue;
    }
    auto w = c.req_async(tracked(v));
    if (!w.valid()) {
      out.expected += f(v);
      ++out.wrong;
      continue;
    }
    window.emplace_back(v, std::move(w));
    if (window.size() == 8) {
      check(window.front().first, window.front().second.wait());
      window.pop_front();
    }
  }
  for (auto& [v, w] : window) check(v, w.wait());
}

void run(int k, int m, mode how) {
  lifetime_check guard;
  CAPTURE(k);
  CAPTURE(m);
  auto [srv, cli] = ump::channel<tracked, tracked, int>();

  std::uint64_t received_sum = 0;
  std::uint64_t sent_sum = 0;
  long received = 0;
  long reply_failed = 0;
  std::thread server([&s = srv, &received_sum, &sent_sum, &received, &reply_failed] {
    for (;;) {
      auto r = s.wait();
      if (!r.has_value()) {
        CHECK(r.error().code() == ump::errc::clients_disappeared);
        return;
      }
      const std::uint64_t v = r->msg.value();
      received_sum += v;
      sent_sum += f(v);
      ++received;
      if (!r->ctx.reply(tracked(f(v))).has_value()) ++reply_failed;
    }
  });

  std::vector<thread_sums> sums(static_cast<std::size_t>(k));
  std::vector<std::thread> threads;
  for (int t = 0; t < k; ++t) {
    auto& out = sums[static_cast<std::size_t>(t)];
    if (how == mode::shared_client) {
      threads.emplace_back([&shared = cli, t, m, how, &out] { run_client(shared, t, m, how, out); });
    } else {
      threads.emplace_back([c = cli, t, m, how, &out]() mutable { run_client(c, t, m, how, out); });
    }
  }
  for (auto& t : threads) t.join();
  { auto gone = std::move(cli); }
  server.join();

  std::uint64_t expected_values = 0;
  std::uint64_t replied_total = 0;
  long answered = 0;
  for (int t = 0; t < k; ++t) {
    const auto& s = sums[static_cast<std::size_t>(t)];
    CAPTURE(t);
    CHECK(s.wrong == 0);
    CHECK(s.answered == m);
    CHECK(s.replied == s.expected);
    replied_total += s.replied;
    answered += s.answered;
    for (int i = 0; i < m; ++i) expected_values += value_of(t, i);
  }
  CHECK(received == static_cast<long>(k) * m);
  CHECK(answered == received);
  CHECK(reply_failed == 0);
  CHECK(received_sum == expected_values);
  CHECK(sent_sum == replied_total);
}

}  // namespace

TEST_CASE("checksum_4_threads_own_client") { run(4, ump_test::scaled(20000), mode::own_client); }
TEST_CASE("checksum_8_threads_own_client") { run(8, ump_test::scaled(20000), mode::own_client); }
TEST_CASE("checksum_4_threads_shared_client") { run(4, ump_test::scaled(20000), mode::shared_client); }
TEST_CASE("checksum_8_threads_shared_client") { run(8, ump_test::scaled(20000), mode::shared_client); }
TEST_CASE("checksum_4_threads_pipelined") { run(4, ump_test::scaled(20000), mode::pipelined); }
TEST_CASE("checksum_8_threads_pipelined") { run(8, ump_test::scaled(20000), mode::pipelined); }
