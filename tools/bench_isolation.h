// `thinp bench isolation`: how much one thin's provisioning storm slows
// another thin's reads and overwrites, in the simulator.
//
// Thin A runs a storm: a_tasks tasks (8), each writing 4 KiB to the start of
// block after block it has never written (so every write provisions a
// 64 KiB block: reserve, zero-filled FUA write, mapping commit) and calling
// flush() after every a_flush_every writes. Thin B, whose blocks were all
// provisioned before the measurement, runs b_tasks tasks each doing
// b_ops_per_task 4 KiB ops (4 x 500) in a closed loop (one at a time, no think time),
// half reads and half overwrites in place, at random 4 KiB offsets of the
// task's own b_blocks_per_task blocks (disjoint per task, so B's tasks never
// wait on each other's cell locks). The run is done twice over a fresh
// pool: B alone, then B with A's storm, which lasts until B's last op ends.
// The figure is B's p99 latency with the storm divided by B alone.
//
// The device. One one-device pool (metadata area, then data) on one SimDisk
// with no faults and no long tail: every read or write takes 80-120 us, a
// FLUSH 200-400 us (uniform), and at most `channels` requests (8) are
// served at once, in FIFO order, the rest queue (the SimDisk alone would
// serve any number in parallel). That is a small NVMe-like device with a
// bounded internal parallelism; both thins share its queue, so some slowdown
// of B under A's storm is the device's, not the engine's.
//
// Attribution. Virtual time passes only in IO, sleeps and lock waits (the
// simulator charges nothing for CPU). The device decorator records, for
// each B op, how long its IOs spent queued for a channel and being served,
// so latency = device queue + device service + everything else; "everything
// else" (b_*_non_io) is what B waited on in the engine: locks, or a queue of
// the pool's. Zero there means B never waited on A.
//
// Deterministic: the same options give the same report, bit for bit.
#pragma once

#include <cstdint>
#include <string>

#include "engine/base/status.h"

namespace thinp::tools {

struct IsolationBenchOptions {
  uint64_t seed = 1;
  uint32_t a_tasks = 8;
  uint32_t a_flush_every = 4;             // each A task flushes after this many writes
  uint32_t a_max_writes_per_task = 2048;  // bounds the storm (and the data area)
  uint32_t b_tasks = 4;
  uint32_t b_ops_per_task = 500;
  uint32_t b_blocks_per_task = 16;
  uint32_t channels = 8;  // requests the device serves at once
};

// Latency figures of B's ops in one run, in virtual microseconds.
struct IsolationRunFigures {
  uint64_t b_ops = 0;  // completed, all ok
  double b_p50_us = 0, b_p99_us = 0, b_max_us = 0;
  // Per op, the part spent queued for a device channel.
  double b_queue_p50_us = 0, b_queue_p99_us = 0;
  // Per op, the part spent outside IO (locks, engine queues): see above.
  double b_non_io_max_us = 0;
  double b_non_io_total_us = 0;
  uint64_t a_writes = 0, a_flushes = 0;  // the storm's work (0 when alone)
  double seconds = 0;                    // virtual run time
};

struct IsolationBenchReport {
  IsolationBenchOptions options;
  IsolationRunFigures alone, storm;
  double p99_ratio = 0;  // storm.b_p99_us / alone.b_p99_us
  double p50_ratio = 0;
};

// invalid_argument for counts of zero or a storm too large for the pool;
// io_error (or another engine error) if any B op or A write fails.
Result<IsolationBenchReport> run_isolation_bench(const IsolationBenchOptions& options);

// One block of text, or one JSON object (keys: seed, channels, alone{...},
// storm{...}, p99_ratio, p50_ratio).
std::string format_isolation_bench(const IsolationBenchReport& report, bool json);

// `thinp bench isolation`: prints the report; returns the exit code (0, 1
// for a failed run, 2 for bad options).
int run_isolation_bench_command(const IsolationBenchOptions& options, bool json);

}  // namespace thinp::tools
