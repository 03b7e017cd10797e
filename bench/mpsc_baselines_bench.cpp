// bench/mpsc_baselines_bench.cpp - registers the oneTBB, Boost.Lockfree and Asio baselines
// (mpsc_baselines.hpp) for rtt, contended, pipelined and post. Each library is optional at
// configure time (bench/CMakeLists.txt defines UMP_BENCH_HAVE_<LIB> when it is found).
#include "mpsc_baselines.hpp"

namespace {

const bool registered = [] {
  using namespace ump_bench;
#if UMP_BENCH_HAVE_TBB
  register_mpsc_baseline<tbb_queue>("tbb");
#endif
#if UMP_BENCH_HAVE_BOOST_LOCKFREE
  register_mpsc_baseline<boost_lockfree_queue>("boost_lockfree");
#endif
#if UMP_BENCH_HAVE_ASIO_CHANNEL
  register_mpsc_baseline<asio_channel_queue>("asio_channel");
#endif
  return true;
}();

}  // namespace
