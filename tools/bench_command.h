// `thinp bench`: benchmarks on a real file, loop device or block device.
#pragma once

#include <cstdint>
#include <string>

namespace thinp::tools {

struct BenchArgs {
  std::string device;
  bool raw = false;
  std::string workload;
  uint64_t block_bytes = 4096;
  uint32_t queue_depth = 32;
  double seconds = 10;
  bool json = false;
};

struct MetadataBenchArgs {
  uint64_t mappings = 0;
  std::string pattern;
  bool json = false;
};

// Returns the exit code: 0 on success, 1 if the run failed (device error),
// 2 for bad arguments.
int run_bench(const BenchArgs& args);
int run_metadata_bench_command(const MetadataBenchArgs& args);

}  // namespace thinp::tools
