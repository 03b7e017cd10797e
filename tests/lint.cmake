# Source checks that need no build: ctest label "lint" (run them alone with `ctest -L lint`).
#   ordering_notes: every memory order in include/ and src/ carries an `// ORDERING:` note
#   on its statement or the comment lines directly above it (tools/check_ordering.py).
#   layers: headers include one way: configuration, vocabulary, mechanisms (detail/),
#   endpoints (tools/check_layers.py).
#   format: every C++ source matches .clang-format (tools/check_format.py, clang-format-14;
#   registered only where clang-format-14 is installed: tools/install_deps.sh installs it).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME lint_ordering_notes
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tools/check_ordering.py ${PROJECT_SOURCE_DIR})
  set_tests_properties(lint_ordering_notes PROPERTIES LABELS "lint" TIMEOUT 60)
  add_test(NAME lint_layers COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tools/check_layers.py ${PROJECT_SOURCE_DIR})
  set_tests_properties(lint_layers PROPERTIES LABELS "lint" TIMEOUT 60)
  find_program(UMP_CLANG_FORMAT NAMES clang-format-14)
  if(UMP_CLANG_FORMAT)
    add_test(NAME lint_format
             COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tools/check_format.py ${PROJECT_SOURCE_DIR}
                     ${UMP_CLANG_FORMAT})
    set_tests_properties(lint_format PROPERTIES LABELS "lint" TIMEOUT 120)
  else()
    message(STATUS "ump: clang-format-14 not found, the format check is not registered")
  endif()
else()
  message(STATUS "ump: no Python 3 interpreter, the lint tests are not registered")
endif()
