# Packaging tests (ctest label "package"): two small projects outside this build use ump the
# ways a user would, each configured, built and run by ctest:
#   tests/consumer/find_package      find_package(ump CONFIG REQUIRED) on this build, installed
#                                    into a prefix inside the build tree;
#   tests/consumer/add_subdirectory  add_subdirectory() on this source tree.
# They run after the library is built (`cmake --install` installs what is already built; it
# does not build). Fixtures order the steps: clean → install → configure → build → run.
#
# The consumers are configured with this build's generator, make program, C++ compiler and
# build type. Sanitizers and -fno-exceptions are passed through rather than skipped: the
# installed ump::ump carries them on its interface (they must match in every translation
# unit), and the add_subdirectory consumer receives this build's UMP_SANITIZE,
# UMP_NO_EXCEPTIONS and UMP_TEST_HOOKS.

set(_ump_pkg_root ${CMAKE_BINARY_DIR}/package-tests)
set(_ump_pkg_prefix ${_ump_pkg_root}/prefix)
set(_ump_pkg_src ${CMAKE_CURRENT_LIST_DIR}/consumer)

set(_ump_pkg_generator -G "${CMAKE_GENERATOR}")
if(CMAKE_GENERATOR_PLATFORM)
  list(APPEND _ump_pkg_generator -A "${CMAKE_GENERATOR_PLATFORM}")
endif()
if(CMAKE_GENERATOR_TOOLSET)
  list(APPEND _ump_pkg_generator -T "${CMAKE_GENERATOR_TOOLSET}")
endif()
if(CMAKE_MAKE_PROGRAM)
  list(APPEND _ump_pkg_generator "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}")
endif()

# Multi-config generators put binaries in per-configuration folders and need --config.
get_property(_ump_pkg_multi GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
if(_ump_pkg_multi)
  set(_ump_pkg_config --config $<CONFIG>)
  set(_ump_pkg_bin_subdir /$<CONFIG>)
else()
  set(_ump_pkg_config)
  set(_ump_pkg_bin_subdir)
  list(APPEND _ump_pkg_generator "-DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}")
endif()

# A list like "address;undefined" would be split into separate add_test arguments: hand it
# over comma-separated, which ump_project_flags() accepts as it is.
string(REPLACE ";" "," _ump_pkg_sanitize "${UMP_SANITIZE}")

# Starts every run from nothing, so a stale prefix or cache cannot hide a broken package.
add_test(NAME package_clean
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${_ump_pkg_root})
set_tests_properties(package_clean PROPERTIES FIXTURES_SETUP ump_package_clean)

# --- find_package ----------------------------------------------------------------------------
if(UMP_INSTALL)
  set(_ump_fp_build ${_ump_pkg_root}/find_package)
  add_test(NAME package_install
    COMMAND ${CMAKE_COMMAND} --install ${CMAKE_BINARY_DIR} --prefix ${_ump_pkg_prefix} ${_ump_pkg_config})
  set_tests_properties(package_install PROPERTIES
    FIXTURES_REQUIRED ump_package_clean FIXTURES_SETUP ump_package_installed)

  add_test(NAME package_find_package_configure
    COMMAND ${CMAKE_COMMAND} -S ${_ump_pkg_src}/find_package -B ${_ump_fp_build} ${_ump_pkg_generator}
            "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}" "-DCMAKE_PREFIX_PATH=${_ump_pkg_prefix}")
  set_tests_properties(package_find_package_configure PROPERTIES
    FIXTURES_REQUIRED ump_package_installed FIXTURES_SETUP ump_package_fp_configured)

  add_test(NAME package_find_package_build
    COMMAND ${CMAKE_COMMAND} --build ${_ump_fp_build} --parallel 2 ${_ump_pkg_config})
  set_tests_properties(package_find_package_build PROPERTIES
    FIXTURES_REQUIRED ump_package_fp_configured FIXTURES_SETUP ump_package_fp_built)

  add_test(NAME package_find_package_run
    COMMAND ${_ump_fp_build}${_ump_pkg_bin_subdir}/consumer${CMAKE_EXECUTABLE_SUFFIX})
  set_tests_properties(package_find_package_run PROPERTIES
    FIXTURES_REQUIRED ump_package_fp_built)

  # The licence travels with the installed package.
  add_test(NAME package_license_installed
    COMMAND ${CMAKE_COMMAND} -E cat ${_ump_pkg_prefix}/${CMAKE_INSTALL_DOCDIR}/LICENSE)
  set_tests_properties(package_license_installed PROPERTIES
    FIXTURES_REQUIRED ump_package_installed PASS_REGULAR_EXPRESSION "MIT License")

  set(_ump_fp_tests package_install package_find_package_configure package_find_package_build
                    package_find_package_run package_license_installed)
else()
  set(_ump_fp_tests)
endif()

# --- add_subdirectory ------------------------------------------------------------------------
set(_ump_sub_build ${_ump_pkg_root}/add_subdirectory)
add_test(NAME package_add_subdirectory_configure
  COMMAND ${CMAKE_COMMAND} -S ${_ump_pkg_src}/add_subdirectory -B ${_ump_sub_build} ${_ump_pkg_generator}
          "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}" "-DUMP_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
          "-DUMP_SANITIZE=${_ump_pkg_sanitize}" "-DUMP_NO_EXCEPTIONS=${UMP_NO_EXCEPTIONS}"
          "-DUMP_TEST_HOOKS=${UMP_TEST_HOOKS}" "-DUMP_WERROR=${UMP_WERROR}")
set_tests_properties(package_add_subdirectory_configure PROPERTIES
  FIXTURES_REQUIRED ump_package_clean FIXTURES_SETUP ump_package_sub_configured)

add_test(NAME package_add_subdirectory_build
  COMMAND ${CMAKE_COMMAND} --build ${_ump_sub_build} --parallel 2 ${_ump_pkg_config})
set_tests_properties(package_add_subdirectory_build PROPERTIES
  FIXTURES_REQUIRED ump_package_sub_configured FIXTURES_SETUP ump_package_sub_built)

add_test(NAME package_add_subdirectory_run
  COMMAND ${_ump_sub_build}${_ump_pkg_bin_subdir}/consumer${CMAKE_EXECUTABLE_SUFFIX})
set_tests_properties(package_add_subdirectory_run PROPERTIES
  FIXTURES_REQUIRED ump_package_sub_built)

set_tests_properties(package_clean ${_ump_fp_tests} package_add_subdirectory_configure
                     package_add_subdirectory_build package_add_subdirectory_run
  PROPERTIES LABELS package TIMEOUT 600)
