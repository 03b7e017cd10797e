#include "support/lifetime.hpp"

#include <doctest/doctest.h>

namespace ump_test {

lifetime_check::~lifetime_check() {
  CHECK_MESSAGE(tracked::live() == start_, "every message, reply and error object is destroyed exactly once");
}

}  // namespace ump_test
