// Usage rules checked in every build (UMP_CHECK): consuming a consumed or moved-from
// reply_context, and using a moved-from client, weak_client, post_client, server or
// wait_reply. Each must abort with a message that names the rule, never crash or run on with
// undefined behaviour, with or without NDEBUG: the release modes of the test matrix run this
// file too.
//
// Each case runs in a forked child (the process is single-threaded here), which must die of
// SIGABRT after writing the rule to stderr; the parent reads that through a pipe.
#include <doctest/doctest.h>

#if defined(__unix__)

#include <csignal>
#include <cstdlib>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <iterator>
#include <utility>
#include <vector>

#include "ump/ng.hpp"
#include "ump/task.hpp"
#include "ump/ump.hpp"

// Each misuse below hands g++ a pointer it can prove null (the moved-from state). It then
// analyses the code after the check that aborts and warns about the null address there, a
// path that never runs. Only this file builds such calls on purpose.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

namespace {

struct child_outcome {
  bool aborted = false;  // killed by SIGABRT
  std::string err;       // what it wrote to stderr
};

// Runs `f` in a child process and reports how it ended.
template <class F>
child_outcome run_in_child(F&& f) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::dup2(fds[1], STDERR_FILENO);
    std::forward<F>(f)();
    ::_exit(0);  // the rule was not enforced
  }
  ::close(fds[1]);
  child_outcome out;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.err.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  out.aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  return out;
}

// The child aborts, and its message names the rule.
template <class F>
void check_aborts_naming(const char* rule, F&& f) {
  const child_outcome out = run_in_child(std::forward<F>(f));
  CHECK(out.aborted);
  INFO("stderr: " << out.err);
  CHECK(out.err.find("ump: usage rule broken: ") != std::string::npos);
  CHECK(out.err.find(rule) != std::string::npos);
}

using server_t = ump::server<int, int, int>;
using client_t = ump::client<int, int, int>;
using ng_client_t = ump::ng::client<int, int, int, int>;

constexpr const char* context_rule = "a reply_context is consumed once";
constexpr const char* client_rule = "a moved-from client is not used";
constexpr const char* server_rule = "a moved-from server is not used";
constexpr const char* wait_reply_rule = "a wait_reply is collected once";

}  // namespace

TEST_CASE("reply_context_consumed_twice_aborts") {
  // The baseline: used correctly, the child exits normally and is reported as such.
  const child_outcome fine = run_in_child([] {
    auto [srv, cli] = ump::channel<int, int, int>();
    auto w = cli.req_async(1);
    auto r = srv.wait();
    r->ctx.reply(2);
    if (*w.wait() != 2) std::abort();
  });
  CHECK_FALSE(fine.aborted);

  using ctx_t = ump::reply_context<int, int>;
  struct form {
    const char* name;
    const char* rule;
    void (*misuse)(ctx_t&);
  };
  const form forms[] = {
      {"reply after reply", context_rule, [](ctx_t& c) { c.reply(3), c.reply(4); }},
      {"fail after reply", context_rule, [](ctx_t& c) { c.reply(3), c.fail(4); }},
      {"rvalue reply after fail", context_rule, [](ctx_t& c) { std::move(c).fail(3), std::move(c).reply(4); }},
      {"reply after move", context_rule,
       [](ctx_t& c) {
         ctx_t other = std::move(c);
         c.reply(4);
       }},
      {"probe after reply", "reply_context used after reply, fail or move",
       [](ctx_t& c) { c.reply(3), (void)c.requester_waiting(); }},
  };
  for (const form& f : forms) {
    INFO(f.name);
    check_aborts_naming(f.rule, [&f] {
      auto [srv, cli] = ump::channel<int, int, int>();
      auto w = cli.req_async(1);
      auto r = srv.wait();
      f.misuse(r->ctx);
    });
  }
}

TEST_CASE("moved_from_client_use_aborts") {
  check_aborts_naming(client_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    client_t other = std::move(cli);
    (void)cli.req(1);  // NOLINT(bugprone-use-after-move): the rule under test
  });
  check_aborts_naming(client_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    client_t other = std::move(cli);
    auto w = cli.req_async(1);  // NOLINT(bugprone-use-after-move)
  });
  check_aborts_naming(client_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    client_t other = std::move(cli);
    client_t copy = cli;  // NOLINT(bugprone-use-after-move)
  });
  check_aborts_naming(client_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    client_t other = std::move(cli);
    auto weak = cli.weak();  // NOLINT(bugprone-use-after-move)
  });
  check_aborts_naming(client_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    client_t other = std::move(cli);
    auto aw = cli.areq(1);  // NOLINT(bugprone-use-after-move)
  });
  check_aborts_naming(client_rule, [] {
    auto [srv, cli] = ump::ng::channel<int, int, int, int>();
    ng_client_t other = std::move(cli);
    (void)cli.post(1);  // an inline post; NOLINT(bugprone-use-after-move)
  });
  check_aborts_naming(client_rule, [] {
    auto [srv, cli] = ump::ng::channel<std::string, int, int, int>();
    auto poster = cli.poster();
    auto other = std::move(poster);
    (void)poster.post("x");  // a post in a node; NOLINT(bugprone-use-after-move)
  });
  check_aborts_naming(client_rule, [] {
    auto [srv, cli] = ump::ng::channel<int, int, int, int>();
    ng_client_t other = std::move(cli);
    auto p = cli.poster();  // NOLINT(bugprone-use-after-move)
  });
  check_aborts_naming("a moved-from weak_client is not used", [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    auto weak = cli.weak();
    auto other = std::move(weak);
    auto up = weak.upgrade();  // NOLINT(bugprone-use-after-move)
  });
}

TEST_CASE("moved_from_server_use_aborts") {
  check_aborts_naming(server_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    server_t other = std::move(srv);
    (void)srv.wait();  // NOLINT(bugprone-use-after-move)
  });
  check_aborts_naming(server_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    server_t other = std::move(srv);
    (void)srv.try_wait();  // NOLINT(bugprone-use-after-move)
  });
  check_aborts_naming(server_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    server_t other = std::move(srv);
    (void)srv.queued();  // NOLINT(bugprone-use-after-move)
  });
  check_aborts_naming(server_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    server_t other = std::move(srv);
    auto body = [](server_t& s) -> ump::task<void> { (void)co_await s.async_wait(); };
    ump::sync_wait(body(srv));  // NOLINT(bugprone-use-after-move)
  });
}

TEST_CASE("batch_receive_of_zero_messages_aborts") {
  constexpr const char* rule = "a batch receive takes at most max messages, and max is at least 1";
  check_aborts_naming(rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    std::vector<server_t::request_type> out;
    (void)srv.wait_many(std::back_inserter(out), 0);
  });
  check_aborts_naming(rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    std::vector<server_t::request_type> out;
    (void)srv.try_wait_many(std::back_inserter(out), 0);
  });
}

TEST_CASE("wait_reply_collected_twice_or_after_move_aborts") {
  check_aborts_naming(wait_reply_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    auto w = cli.req_async(1);
    auto r = srv.wait();
    r->ctx.reply(2);
    (void)w.wait();
    (void)w.wait();
  });
  check_aborts_naming(wait_reply_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    auto w = cli.req_async(1);
    auto other = std::move(w);
    (void)w.wait_for(std::chrono::milliseconds(1));  // NOLINT(bugprone-use-after-move)
  });
  check_aborts_naming(wait_reply_rule, [] {
    // An early failure is collected once too.
    auto [srv, cli] = ump::channel<int, int, int>();
    { auto gone = std::move(srv); }
    auto w = cli.req_async(1);
    (void)w.wait();
    (void)w.wait();
  });
  check_aborts_naming(wait_reply_rule, [] {
    auto [srv, cli] = ump::channel<int, int, int>();
    auto w = cli.req_async(1);
    auto r = srv.wait();
    r->ctx.reply(2);
    (void)w.wait();
    auto aw = std::move(w).async_wait();
  });
}

#else
TEST_CASE("usage_rules_need_fork") {}
#endif
