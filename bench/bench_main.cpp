// bench/bench_main.cpp - main() for ump_bench.
//
// Like BENCHMARK_MAIN(), plus two things:
//   * a default --benchmark_min_time of 0.2 s when the command line gives none, so
//     the whole suite with 5 repetitions stays within a few minutes while a quick
//     look (--benchmark_min_time=0.05) or a long run can still override it;
//   * the compiler and flags recorded in the JSON context for the report.
#include <benchmark/benchmark.h>

#include <string_view>
#include <vector>

#ifndef UMP_BENCH_CXX_FLAGS
#define UMP_BENCH_CXX_FLAGS "unknown"
#endif

namespace {

constexpr std::string_view compiler_name() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "g++ " __VERSION__;
#else
  return "unknown";
#endif
}

}  // namespace

int main(int argc, char** argv) {
  static char default_min_time[] = "--benchmark_min_time=0.2";
  std::vector<char*> args(argv, argv + argc);
  bool has_min_time = false;
  for (int i = 1; i < argc; ++i) {
    has_min_time = has_min_time || std::string_view{argv[i]}.starts_with("--benchmark_min_time");
  }
  if (!has_min_time) args.insert(args.begin() + 1, default_min_time);
  args.push_back(nullptr);
  int args_count = static_cast<int>(args.size()) - 1;

  benchmark::Initialize(&args_count, args.data());
  if (benchmark::ReportUnrecognizedArguments(args_count, args.data())) return 1;
  benchmark::AddCustomContext("ump_compiler", std::string{compiler_name()});
  benchmark::AddCustomContext("ump_cxx_flags", UMP_BENCH_CXX_FLAGS);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
