#include "tools/bench_pool.h"

#include <gperftools/profiler.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "engine/io/block_device.h"
#include "engine/pool/pool.h"
#include "engine/real/reactor.h"
#include "engine/real/real_device.h"
#include "engine/runtime/sync.h"
#include "tools/json.h"

namespace thinp::tools {
namespace {

using real::Reactor;

enum class Workload : uint8_t {
  randread,
  randwrite,
  read,
  write,
  provision,
  overwrite,
  break_sharing
};

Result<Workload> parse_workload(const std::string& name) {
  if (name == "randread") return Workload::randread;
  if (name == "randwrite") return Workload::randwrite;
  if (name == "read") return Workload::read;
  if (name == "write") return Workload::write;
  if (name == "provision") return Workload::provision;
  if (name == "overwrite") return Workload::overwrite;
  if (name == "break-sharing") return Workload::break_sharing;
  return Status(Errc::invalid_argument,
                "unknown workload '" + name +
                    "' (expected randread, randwrite, read, write, provision, overwrite or "
                    "break-sharing)");
}

bool is_read(Workload w) { return w == Workload::randread || w == Workload::read; }
bool needs_prefill(Workload w) {
  return is_read(w) || w == Workload::overwrite || w == Workload::break_sharing;
}
// Workloads that visit each data block once, in a random order.
bool is_once_per_block(Workload w) {
  return w == Workload::provision || w == Workload::break_sharing;
}

constexpr ThinId kThin{1};
constexpr ThinId kSnapshot{2};

// What the benchmark tasks share. They all run on the reactor's thread, one
// at a time, so plain fields suffice.
struct BenchState {
  pool::Pool* pool = nullptr;
  Runtime* rt = nullptr;
  Workload workload = Workload::randread;
  uint64_t io_bytes = 0;
  uint64_t block_bytes = 0;  // the pool's data block
  uint64_t thin_blocks = 0;  // in data blocks
  uint64_t io_slots = 0;     // thin size in io_bytes units
  Nanos deadline{0};
  uint64_t cursor = 0;                // read/write, and the prefill
  std::vector<uint64_t> block_order;  // provision, break-sharing
  size_t next_in_order = 0;
  uint64_t flush_every = 0, writes = 0, flushes = 0;
  Status first_error;
  bool stop = false;
  std::string stopped = "time";
  std::vector<uint64_t> latencies_ns;
  Nanos last_completion{0};
};

void fail_run(BenchState& s, Status status) {
  if (status.code() == Errc::no_space) {
    s.stopped = "no space";
  } else if (s.first_error.ok()) {
    s.first_error = std::move(status);
  }
  s.stop = true;
}

// The byte offset of the next measured IO, or nothing once the workload has
// run out (every block provisioned or unshared).
std::optional<uint64_t> next_offset(BenchState& s) {
  switch (s.workload) {
    case Workload::randread:
    case Workload::randwrite:
    case Workload::overwrite:
      return s.rt->random().uniform(s.io_slots) * s.io_bytes;
    case Workload::read:
    case Workload::write: {
      const uint64_t slot = s.cursor;
      s.cursor = (s.cursor + 1) % s.io_slots;
      return slot * s.io_bytes;
    }
    case Workload::provision:
    case Workload::break_sharing:
      if (s.next_in_order == s.block_order.size()) {
        s.stopped = s.workload == Workload::provision ? "thin full" : "no shared block left";
        return std::nullopt;
      }
      return s.block_order[s.next_in_order++] * s.block_bytes;
  }
  return std::nullopt;
}

void fill_incompressible(Runtime& rt, AlignedBuffer& buffer) {
  Random fill = rt.random().fork();
  auto* words = reinterpret_cast<uint64_t*>(buffer.data());
  for (size_t i = 0; i < buffer.size() / sizeof(uint64_t); ++i) words[i] = fill.next_u64();
}

// One of queue_depth prefill tasks: whole data blocks, ascending, until the
// thin is written once.
void prefill_task(BenchState& s) {
  AlignedBuffer buffer(s.block_bytes);
  fill_incompressible(*s.rt, buffer);
  while (!s.stop && s.cursor < s.thin_blocks) {
    const uint64_t block = s.cursor++;
    Status status = s.pool->write(kThin, block * s.block_bytes, buffer.span());
    if (!status.ok()) fail_run(s, status.with_context("prefill"));
  }
}

// One of queue_depth measured tasks.
void bench_task(BenchState& s) {
  const bool reads = is_read(s.workload);
  AlignedBuffer buffer(s.io_bytes);
  if (!reads) fill_incompressible(*s.rt, buffer);
  Nanos now = s.rt->now();
  while (!s.stop && now < s.deadline) {
    const std::optional<uint64_t> offset = next_offset(s);
    if (!offset) {
      s.stop = true;
      return;
    }
    const Nanos submitted = now;
    Status status = reads ? s.pool->read(kThin, *offset, buffer.span())
                          : s.pool->write(kThin, *offset, buffer.span());
    now = s.rt->now();
    if (!status.ok()) return fail_run(s, std::move(status));
    s.latencies_ns.push_back(static_cast<uint64_t>((now - submitted).count()));
    s.last_completion = std::max(s.last_completion, now);
    if (!reads && s.flush_every > 0 && ++s.writes % s.flush_every == 0) {
      status = s.pool->flush();
      ++s.flushes;
      if (!status.ok()) return fail_run(s, status.with_context("flush"));
      now = s.rt->now();
    }
  }
}

// Runs `body` on queue_depth tasks and waits for them all. Task only.
void run_tasks(BenchState& s, uint32_t queue_depth, const char* name, void (*body)(BenchState&)) {
  WaitGroup done(*s.rt, name);
  done.add(queue_depth);
  for (uint32_t i = 0; i < queue_depth; ++i) {
    s.rt->spawn(std::string(name) + std::to_string(i), [&s, &done, body] {
      body(s);
      done.done();
    });
  }
  done.wait();
}

Status check_options(const PoolBenchOptions& o) {
  if (o.device.empty()) return Status(Errc::invalid_argument, "no device path given");
  if (o.queue_depth == 0 || o.queue_depth > 4096) {
    return Status(Errc::invalid_argument,
                  "queue depth " + std::to_string(o.queue_depth) + " is not in 1..4096");
  }
  if (!(o.seconds > 0 && o.seconds <= 86400)) {
    return Status(Errc::invalid_argument,
                  "duration " + std::to_string(o.seconds) + " s is not in (0, 86400]");
  }
  if (o.io_bytes == 0 || o.io_bytes % 512 != 0) {
    return Status(Errc::invalid_argument,
                  "IO size " + std::to_string(o.io_bytes) + " is not a positive multiple of 512");
  }
  return ok_status();
}

// Geometry checks once the pool's data block size and the thin are known.
Status check_geometry(const PoolBenchOptions& o, Workload w, uint64_t block_bytes,
                      uint64_t thin_bytes) {
  if (is_once_per_block(w) && o.io_bytes > block_bytes) {
    return Status(Errc::invalid_argument, "IO size " + std::to_string(o.io_bytes) +
                                              " is larger than the " + std::to_string(block_bytes) +
                                              "-byte data block");
  }
  if (o.io_bytes > thin_bytes) {
    return Status(Errc::invalid_argument, "IO size " + std::to_string(o.io_bytes) +
                                              " is larger than the thin (" +
                                              std::to_string(thin_bytes) + " bytes)");
  }
  return ok_status();
}

// A random permutation of the thin's blocks (Fisher-Yates on the seeded source).
std::vector<uint64_t> shuffled_blocks(Runtime& rt, uint64_t blocks) {
  std::vector<uint64_t> order(blocks);
  for (uint64_t i = 0; i < blocks; ++i) order[i] = i;
  for (uint64_t i = blocks; i > 1; --i) std::swap(order[i - 1], order[rt.random().uniform(i)]);
  return order;
}

double percentile_us(const std::vector<uint64_t>& sorted_ns, double p) {
  if (sorted_ns.empty()) return 0;
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(p * sorted_ns.size())));
  return static_cast<double>(sorted_ns[std::min<uint64_t>(rank, sorted_ns.size()) - 1]) / 1000;
}

void fill_figures(BenchState& s, Nanos start, PoolBenchReport& rep) {
  std::vector<uint64_t>& lat = s.latencies_ns;
  std::sort(lat.begin(), lat.end());
  rep.ios = lat.size();
  rep.flushes = s.flushes;
  rep.stopped = s.stopped;
  rep.seconds = std::chrono::duration<double>(s.last_completion - start).count();
  if (rep.seconds > 0) {
    rep.iops = static_cast<double>(rep.ios) / rep.seconds;
    rep.mib_per_s = rep.iops * static_cast<double>(rep.io_bytes) / (1024.0 * 1024.0);
  }
  double sum = 0;
  for (uint64_t ns : lat) sum += static_cast<double>(ns);
  rep.lat_us_mean = lat.empty() ? 0 : sum / static_cast<double>(lat.size()) / 1000;
  rep.lat_us_p50 = percentile_us(lat, 0.50);
  rep.lat_us_p99 = percentile_us(lat, 0.99);
  rep.lat_us_p999 = percentile_us(lat, 0.999);
  rep.lat_us_max = lat.empty() ? 0 : static_cast<double>(lat.back()) / 1000;
}

void fill_counters(const pool::PoolStatus& before, const pool::PoolStatus& after,
                   PoolBenchReport& rep) {
  rep.provisioned_blocks = after.provisioned_blocks - before.provisioned_blocks;
  rep.shares_broken = after.shares_broken - before.shares_broken;
  rep.writes_in_place = after.writes_in_place - before.writes_in_place;
  rep.drop_waits = after.drop_waits - before.drop_waits;
  rep.journal_commits = after.store.journal_commits - before.store.journal_commits;
  rep.journal_batches = after.store.journal_batches - before.store.journal_batches;
  rep.journal_writes = after.store.journal_writes - before.store.journal_writes;
}

// Phases 1-3 of bench_pool.h on an open pool. Task only.
Result<PoolBenchReport> bench_open_pool(const PoolBenchOptions& o, Workload w, pool::Pool& pool,
                                        Runtime& rt) {
  PoolBenchReport rep;
  rep.path = o.device;
  rep.workload = o.workload;
  rep.io_bytes = o.io_bytes;
  rep.queue_depth = o.queue_depth;
  rep.data_block_bytes = pool.data_block_bytes();
  const uint64_t data_blocks = pool.status().store.data_blocks;
  const uint64_t default_blocks = w == Workload::break_sharing ? data_blocks / 2 : data_blocks;
  const uint64_t thin_blocks =
      o.thin_bytes > 0 ? (o.thin_bytes + rep.data_block_bytes - 1) / rep.data_block_bytes
                       : default_blocks;
  rep.thin_bytes = thin_blocks * rep.data_block_bytes;
  TP_RETURN_IF_ERROR(check_geometry(o, w, rep.data_block_bytes, rep.thin_bytes));
  TP_RETURN_IF_ERROR(pool.create_thin(kThin, rep.thin_bytes));

  BenchState s;
  s.pool = &pool;
  s.rt = &rt;
  s.workload = w;
  s.io_bytes = o.io_bytes;
  s.block_bytes = rep.data_block_bytes;
  s.thin_blocks = thin_blocks;
  s.io_slots = rep.thin_bytes / o.io_bytes;
  s.flush_every = o.flush_every;
  if (needs_prefill(w)) {
    const Nanos prefill_start = rt.now();
    run_tasks(s, o.queue_depth, "prefill", prefill_task);
    if (!s.first_error.ok()) return s.first_error;
    if (s.stop) return Status(Errc::no_space, "the prefill ran out of data space");
    TP_RETURN_IF_ERROR(pool.flush());
    rep.prefill_seconds = std::chrono::duration<double>(rt.now() - prefill_start).count();
    s.cursor = 0;
  }
  if (w == Workload::break_sharing) TP_RETURN_IF_ERROR(pool.create_snapshot(kThin, kSnapshot));
  if (is_once_per_block(w)) s.block_order = shuffled_blocks(rt, thin_blocks);

  if (!o.profile_path.empty() && ProfilerStart(o.profile_path.c_str()) == 0) {
    return Status(Errc::io_error, "cannot start the CPU profile " + o.profile_path);
  }
  const pool::PoolStatus before = pool.status();
  const Nanos start = rt.now();
  s.last_completion = start;
  s.deadline = start + std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(o.seconds));
  run_tasks(s, o.queue_depth, "bench", bench_task);
  if (!o.profile_path.empty()) ProfilerStop();
  if (!s.first_error.ok()) return s.first_error.with_context("benchmark stopped");
  fill_figures(s, start, rep);
  fill_counters(before, pool.status(), rep);
  return rep;
}

// Format, open, bench, close: the body of the one top-level task.
Result<PoolBenchReport> format_and_bench(const PoolBenchOptions& o, Workload w, Runtime& rt,
                                         BlockDevice& metadata, BlockDevice* data) {
  pool::FormatOptions f;
  f.data_block_bytes = o.data_block_bytes;
  f.force = o.force;
  TP_RETURN_IF_ERROR(pool::Pool::format(rt, metadata, data, f));
  pool::PoolOptions po;
  po.out_of_data_space = OutOfDataSpaceMode::error;  // a full pool ends the run at once
  TP_ASSIGN_OR_RETURN(std::unique_ptr<pool::Pool> pool, pool::Pool::open(rt, metadata, data, po));
  Result<PoolBenchReport> report = bench_open_pool(o, w, *pool, rt);
  Status closed = pool->close();
  if (report.ok() && !closed.ok()) report->close_error = closed.to_string();
  return report;
}

}  // namespace

Result<PoolBenchReport> run_pool_bench(const PoolBenchOptions& options) {
  TP_ASSIGN_OR_RETURN(const Workload workload, parse_workload(options.workload));
  TP_RETURN_IF_ERROR(check_options(options));
  // Seeded afresh each run, as `thinp format` is: the pool's uuid and journal
  // session come from it.
  Reactor reactor(real::ReactorOptions{.seed = std::random_device{}()});
  TP_ASSIGN_OR_RETURN(std::unique_ptr<BlockDevice> metadata,
                      real::open_real_device(reactor, options.device));
  std::unique_ptr<BlockDevice> data;
  if (!options.data_device.empty()) {
    TP_ASSIGN_OR_RETURN(data, real::open_real_device(reactor, options.data_device));
  }
  Result<PoolBenchReport> report = Status(Errc::aborted, "the benchmark task did not run");
  reactor.spawn("pool bench", [&] {
    report = format_and_bench(options, workload, reactor, *metadata, data.get());
  });
  const real::ReactorOutcome outcome = reactor.run();
  if (outcome != real::ReactorOutcome::idle) {
    reactor.kill_all_tasks();
    return Status(Errc::aborted,
                  std::string("benchmark ended with ") + real::reactor_outcome_name(outcome) +
                      ": " +
                      (outcome == real::ReactorOutcome::deadlock ? reactor.deadlock_report()
                                                                 : reactor.failure()));
  }
  return report;
}

namespace {

using ull = unsigned long long;

}  // namespace

std::string format_pool_bench(const PoolBenchReport& r, bool json) {
  char buf[1536];
  if (json) {
    std::snprintf(
        buf, sizeof buf,
        "\"engine\":\"pool\",\"bs\":%llu,\"qd\":%u,\"data_block_bytes\":%llu,\"thin_bytes\":%llu,"
        "\"prefill_seconds\":%.3f,\"seconds\":%.3f,\"ios\":%llu,\"flushes\":%llu,\"iops\":%.1f,"
        "\"mib_per_s\":%.2f,\"lat_us_mean\":%.2f,\"lat_us_p50\":%.2f,\"lat_us_p99\":%.2f,"
        "\"lat_us_p999\":%.2f,\"lat_us_max\":%.2f,\"provisioned_blocks\":%llu,"
        "\"shares_broken\":%llu,\"writes_in_place\":%llu,\"drop_waits\":%llu,"
        "\"journal_commits\":%llu,\"journal_batches\":%llu,\"journal_writes\":%llu}",
        (ull)r.io_bytes, r.queue_depth, (ull)r.data_block_bytes, (ull)r.thin_bytes,
        r.prefill_seconds, r.seconds, (ull)r.ios, (ull)r.flushes, r.iops, r.mib_per_s,
        r.lat_us_mean, r.lat_us_p50, r.lat_us_p99, r.lat_us_p999, r.lat_us_max,
        (ull)r.provisioned_blocks, (ull)r.shares_broken, (ull)r.writes_in_place, (ull)r.drop_waits,
        (ull)r.journal_commits, (ull)r.journal_batches, (ull)r.journal_writes);
    return "{\"path\":" + json_string(r.path) + ",\"workload\":" + json_string(r.workload) +
           ",\"stopped\":" + json_string(r.stopped) +
           ",\"close_error\":" + json_string(r.close_error) + "," + buf;
  }
  std::snprintf(
      buf, sizeof buf,
      " bs=%llu qd=%u pool (%llu KiB blocks, thin %llu MiB) %.1f s (%s): %.0f IOPS, %.1f MiB/s, "
      "latency us p50 %.1f p99 %.1f p99.9 %.1f max %.1f; provisioned %llu, shares broken %llu, "
      "in place %llu, drop waits %llu, journal commits %llu batches %llu writes %llu",
      (ull)r.io_bytes, r.queue_depth, (ull)(r.data_block_bytes / 1024), (ull)(r.thin_bytes >> 20),
      r.seconds, r.stopped.c_str(), r.iops, r.mib_per_s, r.lat_us_p50, r.lat_us_p99, r.lat_us_p999,
      r.lat_us_max, (ull)r.provisioned_blocks, (ull)r.shares_broken, (ull)r.writes_in_place,
      (ull)r.drop_waits, (ull)r.journal_commits, (ull)r.journal_batches, (ull)r.journal_writes);
  return r.workload + " " + r.path + buf;
}

}  // namespace thinp::tools
