// Consumer of an installed ump (find_package): one round trip through each flavour.
// Exits 0 on success, 1 with a message on the first wrong outcome.
#include <cstdio>
#include <string>
#include <thread>

#include "ump/ng.hpp"
#include "ump/ump.hpp"

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "find_package consumer: %s\n", what);
  return 1;
}

}  // namespace

int main() {
  auto [srv, cli] = ump::channel<int, std::string, int>();
  std::thread server([s = std::move(srv)]() mutable {
    while (auto r = s.wait()) {
      auto& [msg, ctx] = *r;
      if (msg < 0) {
        ctx.fail(msg);
      } else {
        ctx.reply(std::to_string(msg * 2));
      }
    }
  });
  auto ok = cli.req(21);
  auto bad = cli.req(-1);
  { auto gone = std::move(cli); }
  server.join();
  if (!ok || *ok != "42") return fail("reply did not round-trip");
  if (bad || !bad.error().is_app_error() || bad.error().app() != -1) return fail("app error did not round-trip");

  auto [nsrv, ncli] = ump::ng::channel<int, int, int>();
  if (!ncli.post(5)) return fail("post failed");
  auto w = ncli.req_async(6);
  if (!w.valid()) return fail("req_async failed");
  auto m = nsrv.wait();
  if (!m || !m->is_post() || m->post() != 5) return fail("post did not arrive");
  auto q = nsrv.wait();
  if (!q || !q->is_request()) return fail("request did not arrive");
  if (!q->req().ctx.reply(q->req().msg + 1)) return fail("reply failed");
  auto r = w.wait();
  if (!r || *r != 7) return fail("ng reply did not round-trip");
  std::puts("find_package consumer: ok");
  return 0;
}
