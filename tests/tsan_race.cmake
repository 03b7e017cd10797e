# The TSan job's self-check: a program with a deliberate data race, registered only in
# ThreadSanitizer builds. The test passes only if ThreadSanitizer's race report appears in
# its output (a crash or any other failure does not count as detection), so a TSan build
# that silently stopped detecting races fails here. In other builds it is not even built.
if(UMP_SANITIZE MATCHES "thread")
  add_executable(tsan_deliberate_race ${CMAKE_CURRENT_SOURCE_DIR}/tsan/deliberate_race.cpp)
  target_link_libraries(tsan_deliberate_race PRIVATE Threads::Threads)
  target_compile_features(tsan_deliberate_race PRIVATE cxx_std_20)
  ump_project_flags(tsan_deliberate_race)
  add_test(NAME tsan_deliberate_race COMMAND tsan_deliberate_race)
  set_tests_properties(tsan_deliberate_race PROPERTIES
    LABELS "unit"
    PASS_REGULAR_EXPRESSION "WARNING: ThreadSanitizer: data race"
    TIMEOUT 120)
endif()
