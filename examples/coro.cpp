// coro: ump with coroutines — ump::task, ump::run_loop, areq and async_wait.
//   1. A server coroutine and client coroutines sharing one run_loop thread.
//   2. A coroutine client against a server running on its own thread.
#include <cctype>
#include <cstdio>
#include <string>
#include <thread>

#include "ump/run_loop.hpp"
#include "ump/task.hpp"
#include "ump/ump.hpp"

using text_server = ump::server<std::string, std::string>;
using text_client = ump::client<std::string, std::string>;
using loop_scheduler = ump::run_loop::scheduler_type;

// Owns the server; upper-cases every request until the last client is gone.
ump::task<void> shouter(text_server srv, loop_scheduler sched) {
  while (auto req = co_await srv.async_wait(sched)) {
    auto& [msg, ctx] = *req;
    for (char& c : msg) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    ctx.reply(std::move(msg));
  }
  std::printf("shouter: every client is gone\n");
}

// Each client coroutine owns its client copy; it is dropped when the coroutine ends.
ump::task<void> ask(text_client cli, loop_scheduler sched, std::string what, int* answered) {
  auto r = co_await cli.areq(what, sched);  // suspends; resumes on the loop's thread
  if (r) {
    std::printf("%s -> %s\n", what.c_str(), r->c_str());
    ++*answered;
  }
}

// Awaits with the default scheduler: after a suspension it continues on the thread that
// replied (here, the worker), which is fine for a coroutine that does not care where it runs.
ump::task<long> sum_of_squares(ump::client<int, long> cli, int n) {
  long sum = 0;
  for (int i = 1; i <= n; ++i) {
    auto r = co_await cli.areq(i);
    if (!r) co_return -1;
    sum += *r;
  }
  co_return sum;
}

int main() {
  // --- 1. both ends on one thread ---------------------------------------------------------
  int answered = 0;
  ump::run_loop loop;
  {
    auto [srv, cli] = ump::channel<std::string, std::string>();
    loop.spawn(shouter(std::move(srv), loop.scheduler()));
    loop.spawn(ask(cli, loop.scheduler(), "hello", &answered));
    loop.spawn(ask(std::move(cli), loop.scheduler(), "coroutines", &answered));
  }
  loop.run();  // returns when every spawned task has finished (the server's too)

  // --- 2. a coroutine client, a server thread ---------------------------------------------
  auto [srv, cli] = ump::channel<int, long>();
  std::thread worker([srv = std::move(srv)]() mutable {
    while (auto req = srv.wait()) {
      auto& [msg, ctx] = *req;
      ctx.reply(static_cast<long>(msg) * msg);
    }
  });
  const long sum = ump::sync_wait(sum_of_squares(cli, 10));  // blocks this thread only
  std::printf("1^2 + ... + 10^2 = %ld\n", sum);
  { auto gone = std::move(cli); }  // the worker's wait() ends
  worker.join();

  return (answered == 2 && sum == 385) ? 0 : 1;
}
