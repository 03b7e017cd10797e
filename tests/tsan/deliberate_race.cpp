// A deliberate data race, to prove that the ThreadSanitizer build really detects races.
//
// Two threads increment one plain int with no synchronisation. A std::latch releases both
// at once so their increments overlap in time, and ThreadSanitizer needs only one pair of
// unordered accesses to report. A compiler barrier in the loop keeps every increment a real
// load and store (without it the loop folds into one access per thread, and about one run
// in twenty went unreported), and the race is run in several rounds of fresh threads.
// Built and registered only when UMP_SANITIZE contains "thread" (tests/tsan_race.cmake),
// where ctest expects TSan's data-race report in the output. Not a doctest test: no ump
// code involved.
#include <cstdio>
#include <latch>
#include <thread>

namespace {
int shared_counter = 0;  // deliberately not atomic
}

int main() {
  constexpr int rounds = 8;
  constexpr int iterations = 20000;
  for (int r = 0; r < rounds; ++r) {
    std::latch start(2);
    auto bump = [&start] {
      start.arrive_and_wait();  // orders each thread after the latch, not after the other
      for (int i = 0; i < iterations; ++i) {
        ++shared_counter;
        asm volatile("" ::: "memory");  // one load and one store per increment
      }
    };
    std::thread a(bump);
    std::thread b(bump);
    a.join();
    b.join();
  }
  std::printf("deliberate_race: counter = %d (expected a ThreadSanitizer report above)\n", shared_counter);
  return 0;
}
