# Source checks that need no build: ctest label "lint" (run them alone with `ctest -L lint`).
#   ordering_notes: every memory order in include/ and src/ carries an `// ORDERING:` note
#   on its statement or the comment lines directly above it (tools/check_ordering.py).
#   layers: headers include one way: configuration, vocabulary, mechanisms (detail/),
#   endpoints (tools/check_layers.py).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME lint_ordering_notes
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tools/check_ordering.py ${PROJECT_SOURCE_DIR})
  set_tests_properties(lint_ordering_notes PROPERTIES LABELS "lint" TIMEOUT 60)
  add_test(NAME lint_layers COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tools/check_layers.py ${PROJECT_SOURCE_DIR})
  set_tests_properties(lint_layers PROPERTIES LABELS "lint" TIMEOUT 60)
else()
  message(STATUS "ump: no Python 3 interpreter, the lint tests are not registered")
endif()
