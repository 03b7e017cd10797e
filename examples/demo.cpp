// demo: a worker thread that answers questions, with ump and with ump::ng.
#include <cstdio>
#include <string>
#include <thread>

#include "ump/ng.hpp"
#include "ump/ump.hpp"

enum class calc_error { divide_by_zero };

struct division {
  int num;
  int den;
};

int main() {
  // --- ump: requests and replies, with an application error type -------------------------
  auto [srv, cli] = ump::channel<division, int, calc_error>();
  std::thread worker([srv = std::move(srv)]() mutable {
    // Serve until every client is gone.
    while (auto req = srv.wait()) {
      auto& [msg, ctx] = *req;
      if (msg.den == 0) {
        ctx.fail(calc_error::divide_by_zero);
      } else {
        ctx.reply(msg.num / msg.den);
      }
    }
  });

  if (auto r = cli.req({84, 2})) std::printf("84 / 2 = %d\n", *r);
  auto r = cli.req({1, 0});
  if (!r && r.error().is_app_error() && r.error().app() == calc_error::divide_by_zero)
    std::printf("1 / 0 = error: %s (divide_by_zero)\n", r.error().what());

  // Several requests in flight at once, collected later.
  auto a = cli.req_async({100, 10});
  auto b = cli.req_async({9, 3});
  std::printf("100 / 10 = %d, 9 / 3 = %d\n", *a.wait(), *b.wait());

  { auto gone = std::move(cli); }  // last client gone: the worker's wait() ends
  worker.join();

  // --- ump::ng: one-way posts next to requests --------------------------------------------
  auto [log_srv, log_cli] = ump::ng::channel<std::string, int, std::size_t>();
  std::thread logger([srv = std::move(log_srv)]() mutable {
    std::size_t lines = 0;
    while (auto m = srv.wait()) {
      if (m->is_post()) {
        std::printf("log: %s\n", m->post().c_str());
        ++lines;
      } else {
        auto& [ignored, ctx] = m->req();
        (void)ignored;
        ctx.reply(lines);  // "how many lines so far?"
      }
    }
  });
  (void)log_cli.post("starting");
  (void)log_cli.post("working");
  std::printf("logger has written %zu lines\n", *log_cli.req(0));
  { auto gone = std::move(log_cli); }
  logger.join();
  return 0;
}
