# Locates moodycamel::ConcurrentQueue's header and defines the imported target
# ump::concurrentqueue. Debian's libconcurrentqueue-dev ships no CMake package, and upstream
# installs put the header under concurrentqueue/moodycamel/: both layouts are accepted.
# Used by the build tree and by the installed ump-config.cmake alike.
if(NOT TARGET ump::concurrentqueue)
  find_path(UMP_CONCURRENTQUEUE_INCLUDE_DIR
    NAMES concurrentqueue.h
    PATH_SUFFIXES concurrentqueue concurrentqueue/moodycamel moodycamel
    DOC "Directory holding moodycamel's concurrentqueue.h")
  if(NOT UMP_CONCURRENTQUEUE_INCLUDE_DIR)
    message(FATAL_ERROR "ump needs moodycamel::ConcurrentQueue (Debian: apt-get install libconcurrentqueue-dev); "
                        "set UMP_CONCURRENTQUEUE_INCLUDE_DIR to the folder holding concurrentqueue.h")
  endif()
  add_library(ump::concurrentqueue INTERFACE IMPORTED)
  set_target_properties(ump::concurrentqueue PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${UMP_CONCURRENTQUEUE_INCLUDE_DIR}")
endif()
