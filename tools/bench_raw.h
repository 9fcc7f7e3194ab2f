// The raw device benchmark behind `thinp bench --device PATH --raw`: fio-style
// workloads driven straight at a real BlockDevice through the Reactor, with no
// pool in between. It is the baseline that pool benchmarks are compared with,
// and it is itself compared with fio on the same file (docs/benchmarks.md).
//
// Method: queue_depth tasks each loop "pick an offset, submit one IO, wait for
// it" until the time is up, so that queue_depth requests are in flight at
// every moment, as with fio's iodepth. Random offsets are multiples of
// block_bytes drawn from the reactor's seeded Random; sequential workloads
// share one cursor that wraps at the end of the device. Latency is measured
// per IO from just before submit to the task's resumption, and kept in a
// log-linear histogram (about 3% resolution).
//
// Writes destroy the device's contents; the caller is responsible for asking.
#pragma once

#include <cstdint>
#include <string>

#include "engine/base/status.h"

namespace thinp::tools {

struct RawBenchOptions {
  std::string path;
  std::string workload;  // randread | randwrite | read | write
  uint64_t block_bytes = 4096;
  uint32_t queue_depth = 32;
  double seconds = 10;
  bool use_uring = true;      // false: the pread/pwrite fallback
  uint64_t seed = 1;          // offsets for the random workloads
  uint32_t submit_batch = 1;  // see ReactorOptions::submit_batch
};

struct RawBenchReport {
  std::string path;
  std::string workload;
  std::string io_engine;  // "io_uring" or "pread" (the fallback)
  uint64_t block_bytes = 0;
  uint32_t queue_depth = 0;
  uint64_t device_bytes = 0;
  double seconds = 0;  // measured: from the first submit to the last completion
  uint64_t ios = 0;
  double iops = 0;
  double mib_per_s = 0;
  double lat_us_mean = 0;
  double lat_us_p50 = 0;
  double lat_us_p99 = 0;
  double lat_us_p999 = 0;
  double lat_us_max = 0;
};

// Runs the benchmark on its own Reactor, on the calling thread. Errors (one
// line each): a bad option (unknown workload, block size not a positive
// multiple of the device's sector size or larger than the device, queue
// depth 0 or above 4096, seconds not in (0, 86400]), the device refusing to
// open, or the first IO error, which stops the run.
Result<RawBenchReport> run_raw_bench(const RawBenchOptions& options);

// One human-readable line, or one JSON object with at least the keys iops,
// mib_per_s, lat_us_p50, lat_us_p99 and lat_us_p999.
std::string format_raw_bench(const RawBenchReport& report, bool json);

}  // namespace thinp::tools
