#include "tools/bench_command.h"

#include <iostream>

#include "tools/bench_metadata.h"
#include "tools/bench_raw.h"

namespace thinp::tools {

int run_bench(const BenchArgs& args) {
  if (!args.raw) {
    std::cerr << "thinp: error: only --raw benchmarks exist so far (the engine's come with the pool)\n";
    return 2;
  }
  RawBenchOptions opts;
  opts.path = args.device;
  opts.workload = args.workload;
  opts.block_bytes = args.block_bytes;
  opts.queue_depth = args.queue_depth;
  opts.seconds = args.seconds;
  auto report = run_raw_bench(opts);
  if (!report.ok()) {
    std::cerr << "thinp: error: " << report.status().message() << "\n";
    // A device that will not open or fails mid-run is a failed run; options
    // the benchmark rejects before touching the device are bad arguments.
    return report.status().code() == Errc::invalid_argument ? 2 : 1;
  }
  std::cout << format_raw_bench(*report, args.json) << "\n";
  return 0;
}

int run_metadata_bench_command(const MetadataBenchArgs& args) {
  auto report = run_metadata_bench(args.mappings, args.pattern);
  if (!report.ok()) {
    std::cerr << "thinp: error: " << report.status().message() << "\n";
    return report.status().code() == Errc::invalid_argument ? 2 : 1;
  }
  std::cout << format_metadata_bench(*report, args.json) << "\n";
  return 0;
}

}  // namespace thinp::tools
