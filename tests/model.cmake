# Model checking of the wait/wake and lifecycle protocol with Relacy (tests/model/README.md).
# The scenarios run the real protocol code, compiled a second time into the model_check
# executable with UMP_MODEL_CHECK (never on the ump target itself). Off under sanitizers (the
# checker explores interleavings itself, and the matrix stays short) and when Relacy's headers
# are missing (Debian: relacy-dev).
find_path(UMP_RELACY_INCLUDE_DIR relacy/relacy.hpp)
if(UMP_RELACY_INCLUDE_DIR AND NOT UMP_SANITIZE)
  set(_ump_model_default ON)
else()
  set(_ump_model_default OFF)
endif()
option(UMP_MODEL_CHECK_TESTS "Build and run the Relacy model-checking scenarios (tests/model)" ${_ump_model_default})
# Extra arguments for the model_protocols test: the clang preset passes --quick (random
# searches only, shortened), since the full search already runs in the gcc preset and its
# outcome does not depend on the compiler's flags.
set(UMP_MODEL_CHECK_ARGS "" CACHE STRING "Extra arguments for the model_protocols test (e.g. --quick)")

if(UMP_MODEL_CHECK_TESTS AND UMP_SANITIZE)
  message(STATUS "ump: model-checking tests skipped in a sanitizer build")
elseif(UMP_MODEL_CHECK_TESTS AND NOT UMP_RELACY_INCLUDE_DIR)
  message(FATAL_ERROR "UMP_MODEL_CHECK_TESTS is ON but relacy/relacy.hpp was not found (Debian: relacy-dev)")
elseif(UMP_MODEL_CHECK_TESTS)
  add_executable(model_check
    ${CMAKE_CURRENT_SOURCE_DIR}/model/model_check.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/model/park_model.cpp
    # The library's own protocol sources (park.cpp is replaced by park_model.cpp).
    ${PROJECT_SOURCE_DIR}/src/cell.cpp
    ${PROJECT_SOURCE_DIR}/src/config.cpp
    ${PROJECT_SOURCE_DIR}/src/result.cpp
    ${PROJECT_SOURCE_DIR}/src/state.cpp)
  target_compile_features(model_check PRIVATE cxx_std_20)
  target_compile_definitions(model_check PRIVATE UMP_MODEL_CHECK=1 UMP_ENABLE_ASSERTS=1)
  target_include_directories(model_check PRIVATE ${PROJECT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR}/model)
  target_include_directories(model_check SYSTEM PRIVATE ${UMP_RELACY_INCLUDE_DIR})
  target_link_libraries(model_check PRIVATE ump::concurrentqueue)
  # ump's warning flags, but not ump_project_flags(): Relacy needs exceptions, and the
  # executable has its own copy of the library, so -fno-exceptions builds do not concern it.
  target_compile_options(model_check PRIVATE -Wall -Wextra -Wpedantic)
  # Relacy replaces the global operator new/delete (inline, in its headers) to track memory
  # inside an execution, but not the sized delete: without this, a sized delete would hand
  # Relacy's memory to the C library's free().
  target_compile_options(model_check PRIVATE -fno-sized-deallocation)
  # The search runs millions of executions: optimise it even in Debug builds (clang preset),
  # or it would take minutes there. Later options win over CMAKE_CXX_FLAGS_DEBUG's -O0.
  if(CMAKE_BUILD_TYPE STREQUAL "Debug")
    target_compile_options(model_check PRIVATE -O2)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # Raised inside Relacy's headers at -O2/-O3 (its operator delete frees with free() what
    # its allocator got from malloc(); its allocator takes a size_t the optimiser sees can be
    # huge): false positives in headers we do not own, not silenced by -isystem because
    # they come from the optimiser.
    target_compile_options(model_check PRIVATE -Wno-mismatched-new-delete -Wno-alloc-size-larger-than)
  endif()
  if(UMP_WERROR)
    target_compile_options(model_check PRIVATE -Werror)
  endif()

  add_test(NAME model_protocols COMMAND model_check ${UMP_MODEL_CHECK_ARGS})
  # A deliberately broken scenario (a wake left out): passes when Relacy reports the deadlock.
  add_test(NAME model_negative_lost_wake COMMAND model_check --negative)
  set_tests_properties(model_protocols model_negative_lost_wake PROPERTIES LABELS model TIMEOUT 900)
endif()
