# Optional Asio integration: the header-only target ump::asio (ump/asio.hpp), defined only
# when standalone Asio's <asio.hpp> is found (Debian: libasio-dev). Included from the
# top-level CMakeLists.txt right after the ump target is defined, so it shares its directory
# scope: the install rules below join the same export set (ump-targets) as ump itself.
#
# Also adds the Asio example (examples/asio/, kept out of examples/CMakeLists.txt's glob).
# The Asio tests are added by tests/asio.cmake when this target exists. Neither is built with
# UMP_NO_EXCEPTIONS: Asio's headers need exceptions.
find_path(UMP_ASIO_INCLUDE_DIR NAMES asio.hpp DOC "Directory holding standalone Asio's asio.hpp")
if(NOT UMP_ASIO_INCLUDE_DIR)
  message(STATUS "ump: standalone Asio not found, ump::asio and its tests are not built")
  return()
endif()

add_library(ump_asio INTERFACE)
add_library(ump::asio ALIAS ump_asio)
set_target_properties(ump_asio PROPERTIES EXPORT_NAME asio)
target_link_libraries(ump_asio INTERFACE ump::ump)
# The Asio headers are found where they were found at build time; an installed ump expects
# them on the consumer's default include path (where distributions put them).
target_include_directories(ump_asio INTERFACE $<BUILD_INTERFACE:${UMP_ASIO_INCLUDE_DIR}>)
# Asio 1.22 does not detect clang 14's C++20 coroutines on its own (use_awaitable, co_spawn).
target_compile_definitions(ump_asio INTERFACE
  $<$<CXX_COMPILER_ID:Clang>:ASIO_HAS_CO_AWAIT=1;ASIO_HAS_STD_COROUTINE=1>)

if(UMP_BUILD_EXAMPLES AND NOT UMP_NO_EXCEPTIONS AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/examples/asio/asio_example.cpp)
  add_executable(asio_example ${CMAKE_CURRENT_SOURCE_DIR}/examples/asio/asio_example.cpp)
  target_link_libraries(asio_example PRIVATE ump::asio)
  set_target_properties(asio_example PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/examples)
  ump_project_flags(asio_example)
endif()

if(UMP_INSTALL)
  install(TARGETS ump_asio EXPORT ump-targets)
endif()
