# Flags for ump's own targets only (never put on the INTERFACE of ump::ump, except the
# ABI-relevant -fno-exceptions and sanitizer flags, which every translation unit must share).
function(ump_project_flags target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(UMP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND UMP_SANITIZE MATCHES "thread")
      # g++ warns that TSan ignores moodycamel's standalone fences (-Wtsan): noted, not fatal.
      target_compile_options(${target} PRIVATE -Wno-error=tsan)
    endif()
  endif()
  if(UMP_NO_EXCEPTIONS)
    target_compile_options(${target} PUBLIC -fno-exceptions)
  endif()
  if(UMP_SANITIZE)
    string(REPLACE ";" "," _san "${UMP_SANITIZE}")
    target_compile_options(${target} PUBLIC -fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PUBLIC -fsanitize=${_san})
    if(UMP_SANITIZE MATCHES "undefined" AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang"
       AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 17)
      # clang < 17: -fsanitize=function (part of "undefined") cannot compile C++20 coroutines
      # ("error: Cannot represent a difference across sections"). The check was reworked in 17.
      target_compile_options(${target} PUBLIC -fno-sanitize=function)
    endif()
  endif()
endfunction()
