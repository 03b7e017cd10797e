// What ump/result.hpp declares out of line: error texts and the bad-access report.
#include "ump/detail/config.hpp"  // first: in model-checking builds it brings in Relacy

#include <cstdio>
#include <cstdlib>

#include "ump/result.hpp"

namespace ump {

const char* to_string(errc c) noexcept {
  switch (c) {
    case errc::server_disappeared:
      return "server disappeared";
    case errc::clients_disappeared:
      return "clients disappeared";
    case errc::no_reply:
      return "no reply";
    case errc::origin_disappeared:
      return "origin disappeared";
    case errc::app_error:
      return "application error";
    case errc::cancelled:
      return "cancelled";
    case errc::timed_out:
      return "timed out";
    case errc::full:
      return "channel full";
  }
  return "unknown ump error";
}

namespace detail {

void throw_bad_result_access(errc c) {
#if UMP_HAS_EXCEPTIONS
  throw bad_result_access(c);
#else
  std::fprintf(stderr, "ump: result::value() called on an error: %s\n", to_string(c));
  std::fflush(stderr);
  std::abort();
#endif
}

}  // namespace detail
}  // namespace ump
