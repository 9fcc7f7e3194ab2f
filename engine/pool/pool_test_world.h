// Test support for Pool tests on the simulator: one pool's disk across
// reboots (the DiskMedia persists; the Scheduler and SimDisk are replaced at
// each boot, as in metadata_store_test.cc), and sector contents that name
// themselves, so that a read can tell which write put each sector there.
//
// Sector tokens: every sector a test writes carries a token (a number > 0,
// unique in the test) in its first 8 bytes and a pattern derived from the
// token in the rest. Token 0 is an all-zero sector (never written, or
// discarded). decode_sector() returns the token of a sector, or nullopt for
// anything else (garbage, a mix of two writes, stale bytes of another
// sector), so a comparison against a model is per sector and exact.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/random.h"
#include "engine/pool/pool.h"
#include "sim/scheduler.h"
#include "sim/sim_disk.h"
#include "sim/sim_disk_media.h"
#include "sim/trace.h"

namespace thinp::pool::testing {

inline constexpr uint64_t kSector = 512;

// The byte at `i` (8 <= i < 512) of a sector carrying `token`.
inline std::byte token_byte(uint64_t token, size_t i) {
  uint64_t x = token * 0x9e3779b97f4a7c15ull + (i / 8) * 0xbf58476d1ce4e5b9ull;
  x ^= x >> 29;
  return std::byte(uint8_t(x >> (8 * (i % 8))));
}

inline void fill_sector(std::span<std::byte> sector, uint64_t token) {
  if (token == 0) {
    std::memset(sector.data(), 0, kSector);
    return;
  }
  std::memcpy(sector.data(), &token, 8);
  for (size_t i = 8; i < kSector; ++i) sector[i] = token_byte(token, i);
}

inline std::optional<uint64_t> decode_sector(std::span<const std::byte> sector) {
  uint64_t token = 0;
  std::memcpy(&token, sector.data(), 8);
  if (token == 0) {
    for (size_t i = 0; i < kSector; ++i) {
      if (sector[i] != std::byte{0}) return std::nullopt;
    }
    return 0;
  }
  for (size_t i = 8; i < kSector; ++i) {
    if (sector[i] != token_byte(token, i)) return std::nullopt;
  }
  return token;
}

// A buffer of `tokens.size()` sectors, sector i carrying tokens[i].
inline AlignedBuffer sectors_of(const std::vector<uint64_t>& tokens) {
  AlignedBuffer b(tokens.size() * kSector);
  for (size_t i = 0; i < tokens.size(); ++i) {
    fill_sector(b.span().subspan(i * kSector, kSector), tokens[i]);
  }
  return b;
}

struct PoolWorldOptions {
  uint64_t device_bytes = uint64_t(16) << 20;
  uint64_t seed = 1;
  sim::SimDiskOptions disk;
};

// One single-device pool over a DiskMedia that survives crashes.
struct PoolWorld {
  explicit PoolWorld(PoolWorldOptions o = {})
      : options(std::move(o)), media(512, options.device_bytes / 512), trace(sim::TraceOptions{}) {
    boot();
  }
  ~PoolWorld() {
    if (sched) sched->kill_all_tasks();
    pool.reset();
  }

  void boot() {
    pool.reset();
    disk.reset();
    sched = std::make_unique<sim::Scheduler>(options.seed * 7919 + boots);
    disk = std::make_unique<sim::SimDisk>(*sched, media, trace, options.disk,
                                          Random(options.seed * 31 + boots));
    ++boots;
  }

  // Power loss now: every task dies where it stands, the disk decides what
  // of its volatile state reaches the media, and the machine boots again
  // (no pool open).
  sim::CrashReport crash(Random& rng, const sim::CrashOptions& crash_options = {}) {
    sched->kill_all_tasks();
    pool.reset();
    sim::CrashReport report = disk->crash(rng, crash_options);
    boot();
    return report;
  }

  // Runs the scheduler until it is idle: empty, or what went wrong
  // (deadlock, a task that threw).
  std::string run_until_idle() {
    const sim::RunOutcome outcome = sched->run();
    if (outcome == sim::RunOutcome::idle) return "";
    return std::string("scheduler ") + sim::run_outcome_name(outcome) + ": " +
           sched->deadlock_report() + sched->failure();
  }
  // Runs `body` as a task until the scheduler is idle: what it returned
  // (empty: all well), or what went wrong with the scheduler.
  std::string run_task(const std::function<std::string()>& body) {
    std::string problem;
    sched->spawn("test", [&] { problem = body(); });
    const std::string sched_problem = run_until_idle();
    return sched_problem.empty() ? problem : sched_problem;
  }
  // Runs `body` as a task until the scheduler is idle.
  void run(std::function<void()> body) {
    sched->spawn("test", std::move(body));
    const std::string problem = run_until_idle();
    ASSERT_EQ(problem, "");
  }

  Status format(FormatOptions f) {
    Status s;
    run([&] { s = Pool::format(*sched, *disk, nullptr, f); });
    return s;
  }

  Status open(PoolOptions o = {}) {
    Status s;
    run([&] {
      auto r = Pool::open(*sched, *disk, nullptr, o);
      if (r.ok()) {
        pool = std::move(r).value();
      } else {
        s = r.status();
      }
    });
    return s;
  }

  // Pool::check() findings, one line each; a failed check is one line too.
  std::vector<std::string> check() {
    std::vector<std::string> out;
    run([&] {
      auto findings = pool->check();
      if (!findings.ok()) {
        out.push_back("check failed: " + findings.status().to_string());
        return;
      }
      for (const CheckFinding& f : *findings) out.push_back(f.what);
    });
    return out;
  }

  PoolWorldOptions options;
  uint64_t boots = 0;
  sim::DiskMedia media;
  sim::IoTrace trace;
  std::unique_ptr<sim::Scheduler> sched;
  std::unique_ptr<sim::SimDisk> disk;
  std::unique_ptr<Pool> pool;
};

// The number of distinct data blocks mapped by any thin of `pool` (task
// only): what status().store.data_used must equal.
inline Result<uint64_t> distinct_data_blocks(Pool& pool) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [begin, end) of data blocks
  for (const ThinInfo& t : pool.thins()) {
    TP_ASSIGN_OR_RETURN(std::vector<Run> runs, pool.mappings(t.thin));
    for (const Run& r : runs) ranges.emplace_back(r.dbegin.value(), r.dbegin.value() + r.length);
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t count = 0, covered_to = 0;
  for (const auto& [b, e] : ranges) {
    const uint64_t from = std::max(b, covered_to);
    if (e > from) count += e - from;
    covered_to = std::max(covered_to, e);
  }
  return count;
}

}  // namespace thinp::pool::testing
