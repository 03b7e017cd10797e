# Tests of the Asio adapter (include/ump/asio.hpp): every tests/asio/*.cpp is one doctest
# executable (asio_<name>) and ctest test with the label "async". They exist only when the
# ump::asio target does (standalone Asio found, see cmake/ump-asio.cmake), and not in
# -fno-exceptions builds (use_future and use_awaitable need exceptions, and Asio without
# exceptions wants the application to define asio::detail::throw_exception). The files are
# deliberately not named *_test.cpp: the generic rule in tests/CMakeLists.txt would build
# them without Asio.
if(TARGET ump::asio AND NOT UMP_NO_EXCEPTIONS)
  file(GLOB UMP_ASIO_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/asio/*.cpp)
  foreach(src ${UMP_ASIO_TEST_SOURCES})
    get_filename_component(stem ${src} NAME_WE)
    set(name asio_${stem})
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE ump_test_support ump::asio)
    ump_project_flags(${name})
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES LABELS "async" TIMEOUT 600)
  endforeach()
endif()
