// The doctest runner for every ump test executable. After the tests it checks the lifetime
// oracle: every payload object constructed anywhere in the run has been destroyed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "support/lifetime.hpp"

int main(int argc, char** argv) {
  doctest::Context ctx(argc, argv);
  const int rc = ctx.run();
  if (ctx.shouldExit()) return rc;
  const long live = ump_test::tracked::live();
  if (live != 0) {
    std::fprintf(stderr, "lifetime oracle: %ld tracked objects still alive at exit\n", live);
    return rc != 0 ? rc : 1;
  }
  return rc;
}
