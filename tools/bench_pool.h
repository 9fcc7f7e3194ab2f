// The engine benchmark behind `thinp bench --device PATH` (without --raw):
// formats a pool on a real file or device, creates one thin and drives a
// workload through Pool::read / Pool::write with queue_depth concurrent tasks
// on a Reactor, the same way bench_raw.h drives the bare device, so the two
// reports compare as a ratio (docs/benchmarks.md, "The engine on a real
// device").
//
// Method. Thin 1 spans the data area (or `thin_bytes`). Phases:
//   1. prefill (read, randread, overwrite, break-sharing only): queue_depth
//      tasks write every data block of the thin once, whole blocks of
//      incompressible bytes in ascending order, then one Pool::flush. Each of
//      these writes provisions its block. Timed separately, not in the figures;
//   2. break-sharing only: thin 2 is created as a snapshot of thin 1;
//   3. the measured phase: queue_depth tasks each loop "pick an offset, one
//      Pool IO of io_bytes, wait for it" until `seconds` have passed or the
//      workload runs out:
//        randread/randwrite  uniform random io_bytes-aligned offsets;
//        read/write          one shared cursor over the thin, wrapping;
//        overwrite           as randwrite, after the prefill, so every write
//                            lands in a provisioned unshared block (in place);
//        provision           io_bytes at the start of each data block of the
//                            thin, in a random order, each block once: every
//                            write provisions; stops when the thin is full;
//        break-sharing       the same order over the origin after the
//                            snapshot: every write breaks one block's sharing;
//                            stops when none is shared any more.
//      randwrite and write run on the fresh (unprovisioned) thin, as fio would
//      on a new thin volume: their first write to each block provisions it.
//      With flush_every > 0, every flush_every-th write is followed by a
//      Pool::flush from the task that made it (not counted in latency).
//   4. Pool::close (a checkpoint), outside the figures.
// Latency is per IO from just before the Pool call to the task's resumption
// (wall clock); the pool counters are deltas over the measured phase.
//
// Destroys the device's contents. The pool is left formatted, closed and
// checkable with `thinp check`.
#pragma once

#include <cstdint>
#include <string>

#include "engine/base/status.h"

namespace thinp::tools {

struct PoolBenchOptions {
  std::string device;       // metadata device (and data, for a one-device pool)
  std::string data_device;  // empty: one-device pool
  std::string workload;     // randread|randwrite|read|write|provision|overwrite|break-sharing
  uint64_t io_bytes = 4096;
  uint32_t queue_depth = 32;
  double seconds = 10;
  // 0: the whole data area, or half of it for break-sharing (whose breaks
  // need a second copy of every block).
  uint64_t thin_bytes = 0;
  uint64_t data_block_bytes = 64 * 1024;
  uint64_t flush_every = 0;  // 0: never flush during the measured phase
  bool force = false;        // format over an existing pool
  std::string profile_path;  // non-empty: gperftools CPU profile of the measured phase
};

struct PoolBenchReport {
  std::string path;
  std::string workload;
  uint64_t io_bytes = 0;
  uint32_t queue_depth = 0;
  uint64_t data_block_bytes = 0;
  uint64_t thin_bytes = 0;
  double prefill_seconds = 0;  // 0 if the workload has no prefill
  double seconds = 0;          // measured: first submit to last completion
  std::string stopped;         // "time", "thin full", "no shared block left", "no space"
  uint64_t ios = 0;
  uint64_t flushes = 0;
  double iops = 0;
  double mib_per_s = 0;
  double lat_us_mean = 0, lat_us_p50 = 0, lat_us_p99 = 0, lat_us_p999 = 0, lat_us_max = 0;
  // PoolStatus / StoreStatus counters, over the measured phase.
  uint64_t provisioned_blocks = 0, shares_broken = 0, writes_in_place = 0, drop_waits = 0;
  uint64_t journal_commits = 0, journal_batches = 0, journal_writes = 0;
  // Pool::close failed after the measured phase (the figures above stand;
  // the pool may not reopen). Empty when it closed cleanly.
  std::string close_error;
};

// Runs on its own Reactor on the calling thread. Errors: invalid_argument for
// a bad option (unknown workload; io_bytes not a positive multiple of 512,
// larger than the thin, or for provision and break-sharing larger than a
// data block; queue depth not in 1..4096; seconds not in (0, 86400]);
// already_exists-style errors from Pool::format for a device that holds a
// pool without `force`; device open errors; the first IO error, which stops
// the run. A failed Pool::close after a complete run is reported in
// close_error, not as an error, so that the figures survive. Running out of data space ends the run
// early (stopped "no space"), it is not an error.
Result<PoolBenchReport> run_pool_bench(const PoolBenchOptions& options);

// One human-readable line, or one JSON object (keys as the report's fields).
std::string format_pool_bench(const PoolBenchReport& report, bool json);

}  // namespace thinp::tools
