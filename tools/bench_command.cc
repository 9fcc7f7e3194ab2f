#include "tools/bench_command.h"

#include <iostream>

#include "tools/bench_metadata.h"
#include "tools/bench_pool.h"
#include "tools/bench_raw.h"

namespace thinp::tools {

namespace {

int run_pool_bench_command(const BenchArgs& args) {
  PoolBenchOptions opts;
  opts.device = args.device;
  opts.data_device = args.data_device;
  opts.workload = args.workload;
  opts.io_bytes = args.block_bytes;
  opts.queue_depth = args.queue_depth;
  opts.seconds = args.seconds;
  opts.thin_bytes = args.thin_bytes;
  opts.data_block_bytes = args.data_block_bytes;
  opts.flush_every = args.flush_every;
  opts.force = args.force;
  opts.profile_path = args.profile_path;
  auto report = run_pool_bench(opts);
  if (!report.ok()) {
    std::cerr << "thinp: error: " << report.status().message() << "\n";
    return report.status().code() == Errc::invalid_argument ? 2 : 1;
  }
  std::cout << format_pool_bench(*report, args.json) << "\n";
  if (!report->close_error.empty()) {
    std::cerr << "thinp: error: closing the pool: " << report->close_error << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int run_bench(const BenchArgs& args) {
  if (!args.raw) return run_pool_bench_command(args);
  if (!args.data_device.empty() || args.thin_bytes != 0 || args.data_block_bytes != 64 * 1024 ||
      args.flush_every != 0 || args.force || !args.profile_path.empty()) {
    std::cerr << "thinp: error: --data-device, --size, --block-size, --flush-every, --force and "
                 "--profile are for engine benchmarks, not --raw\n";
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
