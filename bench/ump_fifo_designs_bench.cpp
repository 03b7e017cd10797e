// bench/ump_fifo_designs_bench.cpp - registers the two one-FIFO designs (fifo_designs.hpp) as
// post/fifo_lock/producers:N and post/fifo_ticket/producers:N. Built only with ump::ump, whose
// send lock design B uses.
#include "fifo_designs.hpp"

namespace {

const bool registered = [] {
  using namespace ump_bench;
  register_post<fifo_lock_post>("fifo_lock");
  register_post<fifo_ticket_post>("fifo_ticket");
  return true;
}();

}  // namespace
