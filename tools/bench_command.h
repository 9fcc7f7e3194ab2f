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
  // Engine benchmarks only (without --raw): see bench_pool.h.
  std::string data_device;
  uint64_t thin_bytes = 0;  // 0: the workload's default
  uint64_t data_block_bytes = 64 * 1024;
  uint64_t flush_every = 0;
  bool force = false;
  std::string profile_path;
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
