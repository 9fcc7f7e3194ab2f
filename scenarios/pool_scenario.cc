#include "scenarios/pool_scenario.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include "engine/base/hash.h"
#include "engine/base/random.h"
#include "engine/io/block_device.h"
#include "engine/pool/pool.h"
#include "sim/scheduler.h"
#include "sim/sim_disk.h"
#include "sim/sim_disk_media.h"
#include "sim/trace.h"

namespace thinp::scenarios {
namespace {

using pool::Pool;

constexpr uint64_t kSector = 512;
constexpr uint32_t kWorkers = 3;
constexpr uint64_t kGroupBlocks = 4;  // workers own groups of blocks: group % kWorkers
constexpr uint64_t kThinBlocks = 48;  // every thin's size, in data blocks
constexpr size_t kMaxThins = 4;
constexpr uint64_t kDataBlocks = 256;  // > kMaxThins * kThinBlocks: never out of space
constexpr uint64_t kInFlight = UINT64_MAX;
constexpr uint64_t kMaxEventsPerBoot = 20'000'000;

// --- Sector contents -----------------------------------------------------------------
// A written sector holds the id of the write (8 bytes), its sector index in
// the thin (8 bytes) and a pattern of both; an unwritten one reads as zeros
// (value 0). Anything else is garbage.

uint64_t pattern_word(uint64_t id, uint64_t sector, uint64_t i) {
  uint64_t x = id * 0x9e3779b97f4a7c15ULL ^ (sector + 1) * 0xc2b2ae3d27d4eb4fULL ^ i;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  return x ^ (x >> 29);
}

void fill_sector(std::byte* p, uint64_t id, uint64_t sector) {
  uint64_t w[kSector / 8];
  w[0] = id;
  w[1] = sector;
  for (uint64_t i = 2; i < kSector / 8; ++i) w[i] = pattern_word(id, sector, i);
  std::memcpy(p, w, kSector);
}

// The write id a sector holds: 0 for zeros, nullopt for garbage.
std::optional<uint64_t> decode_sector(const std::byte* p, uint64_t sector) {
  uint64_t w[kSector / 8];
  std::memcpy(w, p, kSector);
  if (w[0] == 0) {
    for (uint64_t v : w) {
      if (v != 0) return std::nullopt;
    }
    return 0;
  }
  if (w[1] != sector) return std::nullopt;
  for (uint64_t i = 2; i < kSector / 8; ++i) {
    if (w[i] != pattern_word(w[0], sector, i)) return std::nullopt;
  }
  return w[0];
}

// --- The model -----------------------------------------------------------------------

struct SectorState {
  std::vector<uint64_t> current{0};  // what a read may return now
  uint64_t base = 0;                 // durable as of the last flush covering it
  // Written since `base` (ack sequence, or kInFlight): after a crash a read
  // may return base or any of these.
  std::vector<std::pair<uint64_t, uint64_t>> since;
};

struct ThinModel {
  std::map<uint64_t, SectorState> sectors;  // absent: never written, zeros
  bool busy = false;                        // being snapshotted or deleted
  SectorState& at(uint64_t s) { return sectors[s]; }
};

struct Plan {
  uint64_t data_block_bytes = 0;
  uint64_t metadata_bytes = uint64_t(4) << 20;
  uint64_t journal_blocks = 0;
  uint64_t cache_pages = 0;
  uint32_t crash_boots = 0;
  sim::LatencyConfig latency;
  sim::CrashOptions crash;
  bool bug_data_no_fua = false;

  uint64_t device_bytes() const { return metadata_bytes + (kDataBlocks + 1) * data_block_bytes; }
  uint64_t thin_bytes() const { return kThinBlocks * data_block_bytes; }
  uint64_t sectors_per_block() const { return data_block_bytes / kSector; }
};

Plan make_plan(Random& rng, const ScenarioOptions& options) {
  Plan p;
  const uint64_t sizes[] = {4096, 8192, 65536};
  p.data_block_bytes = sizes[rng.uniform(3)];
  p.journal_blocks = 16 + rng.uniform(113);
  p.cache_pages = 48 + rng.uniform(400);
  p.crash_boots = 1 + static_cast<uint32_t>(rng.uniform(4));
  p.crash.tear_sectors = rng.chance(0.5) ? 1 : 8;
  for (const std::string& b : options.bugs) {
    if (b == "pool-data-no-fua") p.bug_data_no_fua = true;
  }
  return p;
}

struct Counts {
  uint64_t writes = 0, reads = 0, discards = 0, flushes = 0, fua = 0, creates = 0, snapshots = 0,
           deletes = 0, crashes = 0, sectors_checked = 0, maybe_thins = 0;
};

struct PoolRun {
  PoolRun(const ScenarioOptions& o, Random& rng)
      : options(o),
        plan(make_plan(rng, o)),
        media(kSector, plan.device_bytes() / kSector),
        trace(sim::TraceOptions{}),
        sched_rng(rng.fork()),
        disk_rng(rng.fork()),
        crash_rng(rng.fork()),
        work_rng(rng.fork()) {}

  void fail(const std::string& why) {
    if (failure.empty()) failure = "boot " + std::to_string(boot) + ": " + why;
  }
  void log(const std::string& line) {
    if (options.verbose && options.log != nullptr) *options.log << line << "\n";
  }

  const ScenarioOptions& options;
  Plan plan;
  sim::DiskMedia media;
  sim::IoTrace trace;
  Random sched_rng, disk_rng, crash_rng, work_rng;
  std::map<uint64_t, ThinModel> thins;
  std::set<uint64_t> maybe;  // created or deleted by an operation cut by the crash
  std::set<std::pair<uint64_t, uint64_t>> dirty;  // (thin, sector) with `since` entries
  uint64_t next_write_id = 1, ack_seq = 0, next_thin = 1;
  uint32_t boot = 0;
  Counts counts;
  Digest digest;
  std::string failure;
};

// --- One boot ------------------------------------------------------------------------

class PoolBoot {
 public:
  PoolBoot(PoolRun& run, uint64_t ops_budget, bool final_boot)
      : run_(run),
        sched_(run.sched_rng.next_u64()),
        disk_(sched_, run.media, run.trace, disk_options(run), run.disk_rng.fork()),
        ops_budget_(ops_budget),
        final_(final_boot) {}
  ~PoolBoot() {
    sched_.kill_all_tasks();
    pool_.reset();
  }

  // `crash_after_events`: stop after that many events (a crash point)
  // instead of at the end of the boot's workload.
  void execute(bool format, uint64_t crash_after_events = 0) {
    sched_.spawn("main", [this, format] { main_task(format); });
    sim::RunLimits limits;
    const bool cut = crash_after_events != 0 && crash_after_events < kMaxEventsPerBoot;
    limits.max_events = cut ? crash_after_events : kMaxEventsPerBoot;
    const sim::RunOutcome out = sched_.run(limits);
    if (out == sim::RunOutcome::deadlock) run_.fail("deadlock: " + sched_.deadlock_report());
    if (out == sim::RunOutcome::task_failed) run_.fail(sched_.failure());
    if (out == sim::RunOutcome::event_limit && !cut) run_.fail("event limit reached (livelock?)");
  }
  uint64_t events_run() const { return sched_.events_run(); }

  // Power loss: tasks die mid-IO, the disk decides what of its cache lands.
  void crash() {
    sched_.kill_all_tasks();
    pool_.reset();
    const sim::CrashReport report = disk_.crash(run_.crash_rng, run_.plan.crash);
    ++run_.counts.crashes;
    run_.log("crash at " + std::to_string(sched_.now().count()) + " ns: " + report.summary());
    // What was in flight may or may not have happened.
    for (uint64_t id : in_flight_mgmt_) run_.maybe.insert(id);
  }

 private:
  static sim::SimDiskOptions disk_options(const PoolRun& run) {
    sim::SimDiskOptions o;
    o.name = "sim-disk#" + std::to_string(run.boot);
    o.latency = run.plan.latency;
    return o;
  }

  void main_task(bool format);
  bool verify_after_open();
  void worker(uint32_t index, Random rng);
  void manager(Random rng);
  bool op_done();
  void do_write(Random& rng, uint64_t thin, uint32_t worker, bool fua);
  void do_read(Random& rng, uint64_t thin, uint32_t worker);
  void do_discard(Random& rng, uint64_t thin, uint32_t worker);
  void do_flush();
  // A sector range [s0, s1) of a group the worker owns.
  std::pair<uint64_t, uint64_t> pick_range(Random& rng, uint32_t worker, bool whole_blocks);
  std::optional<uint64_t> pick_thin(Random& rng);
  bool check_read(uint64_t thin, uint64_t s0, const AlignedBuffer& buf, bool after_crash);
  void stop() {
    stopping_ = true;
    sched_.request_stop();
  }

  PoolRun& run_;
  sim::Scheduler sched_;
  sim::SimDisk disk_;
  uint64_t ops_budget_;
  bool final_;
  std::unique_ptr<Pool> pool_;
  uint64_t ops_ = 0;
  bool stopping_ = false;
  uint32_t live_workers_ = 0;
  std::set<uint64_t> in_flight_mgmt_;
};

void PoolBoot::main_task(bool format) {
  const Plan& plan = run_.plan;
  if (format) {
    pool::FormatOptions fo;
    fo.data_block_bytes = plan.data_block_bytes;
    fo.metadata_bytes = plan.metadata_bytes;
    fo.journal_blocks = plan.journal_blocks;
    const Status s = Pool::format(sched_, disk_, nullptr, fo);
    if (!s.ok()) run_.fail("format: " + s.to_string());
    return;
  }
  pool::PoolOptions po;
  po.store.cache_pages = plan.cache_pages;
  po.unsafe_new_blocks_without_fua = plan.bug_data_no_fua;
  Result<std::unique_ptr<Pool>> opened = Pool::open(sched_, disk_, nullptr, po);
  if (!opened.ok()) return run_.fail("open: " + opened.status().to_string());
  pool_ = std::move(*opened);
  if (!verify_after_open()) return;
  if (final_) {
    const Status s = pool_->close();
    if (!s.ok()) run_.fail("close: " + s.to_string());
    return;
  }
  live_workers_ = kWorkers;
  for (uint32_t i = 0; i < kWorkers; ++i) {
    sched_.spawn("worker" + std::to_string(i),
                 [this, i, rng = run_.work_rng.fork()]() mutable { worker(i, rng); });
  }
  sched_.spawn("manager", [this, rng = run_.work_rng.fork()]() mutable { manager(rng); });
}

// After open: the thins are those the model says (plus or minus the ones an
// interrupted operation touched), every sector reads a value the model
// allows, and check() is clean. The model then takes what was read as the
// durable state.
bool PoolBoot::verify_after_open() {
  std::set<uint64_t> found;
  for (const pool::ThinInfo& t : pool_->thins()) found.insert(t.thin.value());
  for (auto it = run_.thins.begin(); it != run_.thins.end();) {
    const uint64_t id = it->first;
    if (found.count(id) == 0) {
      if (run_.maybe.count(id) == 0) {
        run_.fail("thin " + std::to_string(id) + " is missing after recovery");
        return false;
      }
      it = run_.thins.erase(it);  // its delete reached the disk
      continue;
    }
    ++it;
  }
  for (uint64_t id : found) {
    if (run_.thins.count(id) != 0) continue;
    if (run_.maybe.count(id) == 0) {
      run_.fail("thin " + std::to_string(id) + " exists after recovery but was never created");
      return false;
    }
    // Created by an interrupted create or snapshot: not modelled, dropped.
    ++run_.counts.maybe_thins;
    const Status s = pool_->delete_thin(ThinId(id));
    if (!s.ok()) {
      run_.fail("deleting thin " + std::to_string(id) + ": " + s.to_string());
      return false;
    }
  }
  run_.maybe.clear();
  const uint64_t bytes = run_.plan.thin_bytes();
  for (auto& [id, model] : run_.thins) {
    AlignedBuffer buf(bytes);
    const Status s = pool_->read(ThinId(id), 0, buf.span());
    if (!s.ok()) {
      run_.fail("reading thin " + std::to_string(id) + " after open: " + s.to_string());
      return false;
    }
    if (!check_read(id, 0, buf, true)) return false;
    model.busy = false;
  }
  run_.dirty.clear();
  Result<std::vector<pool::CheckFinding>> findings = pool_->check();
  if (!findings.ok()) {
    run_.fail("check: " + findings.status().to_string());
    return false;
  }
  if (!findings->empty()) {
    run_.fail("check after open: " + findings->front().what + " (" +
              std::to_string(findings->size()) + " findings)");
    return false;
  }
  run_.digest.add_u64(pool_->status().store.data_used);
  return true;
}

// Checks each sector of `buf` (read from `thin` at sector s0) against the
// model: during a boot the value must be one a read may return now; after
// a crash, the durable one or one written since. Then the model knows.
bool PoolBoot::check_read(uint64_t thin, uint64_t s0, const AlignedBuffer& buf, bool after_crash) {
  ThinModel& model = run_.thins.at(thin);
  const uint64_t n = buf.size() / kSector;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t s = s0 + i;
    const std::optional<uint64_t> got = decode_sector(buf.data() + i * kSector, s);
    auto it = model.sectors.find(s);
    const bool known = it != model.sectors.end();
    std::vector<uint64_t> allowed;
    if (!known) {
      allowed = {0};
    } else if (after_crash) {
      allowed.push_back(it->second.base);
      for (const auto& [id, seq] : it->second.since) allowed.push_back(id);
    } else {
      allowed = it->second.current;
    }
    ++run_.counts.sectors_checked;
    if (!got.has_value() || std::find(allowed.begin(), allowed.end(), *got) == allowed.end()) {
      std::ostringstream os;
      os << (after_crash ? "after recovery, " : "") << "thin " << thin << " sector " << s
         << " (block " << s / run_.plan.sectors_per_block() << ") reads "
         << (got.has_value() ? "write " + std::to_string(*got) : std::string("garbage"))
         << "; allowed:";
      for (uint64_t a : allowed) os << " " << a;
      run_.fail(os.str());
      return false;
    }
    run_.digest.add_u64(*got);
    if (!known) continue;
    it->second.current = {*got};
    if (after_crash) {
      it->second.base = *got;
      it->second.since.clear();
    }
  }
  return true;
}

bool PoolBoot::op_done() {
  if (stopping_) return true;
  if (++ops_ >= ops_budget_) {
    stop();
    return true;
  }
  return false;
}

std::optional<uint64_t> PoolBoot::pick_thin(Random& rng) {
  std::vector<uint64_t> ids;
  for (const auto& [id, m] : run_.thins) {
    if (!m.busy) ids.push_back(id);
  }
  if (ids.empty()) return std::nullopt;
  return ids[rng.uniform(ids.size())];
}

std::pair<uint64_t, uint64_t> PoolBoot::pick_range(Random& rng, uint32_t worker,
                                                   bool whole_blocks) {
  const uint64_t groups = kThinBlocks / kGroupBlocks;
  const uint64_t mine =
      (groups - worker + kWorkers - 1) / kWorkers;  // groups g = worker mod kWorkers
  const uint64_t g = worker + kWorkers * rng.uniform(mine);
  const uint64_t spb = run_.plan.sectors_per_block();
  const uint64_t first = g * kGroupBlocks * spb, end = first + kGroupBlocks * spb;
  if (whole_blocks) {
    const uint64_t b0 = rng.uniform(kGroupBlocks);
    const uint64_t b1 = b0 + 1 + rng.uniform(kGroupBlocks - b0);
    return {first + b0 * spb, first + b1 * spb};
  }
  // Mostly small writes within a block, sometimes across blocks.
  const uint64_t s0 = first + rng.uniform(end - first);
  const uint64_t max_len = rng.chance(0.7) ? std::min(end - s0, uint64_t(16)) : end - s0;
  return {s0, s0 + 1 + rng.uniform(max_len)};
}

void PoolBoot::worker(uint32_t index, Random rng) {
  while (!stopping_) {
    std::optional<uint64_t> thin = pick_thin(rng);
    if (!thin.has_value()) {
      sched_.sleep(std::chrono::microseconds(200));
      continue;
    }
    const uint64_t dice = rng.uniform(100);
    if (dice < 45) {
      do_write(rng, *thin, index, false);
    } else if (dice < 50) {
      do_write(rng, *thin, index, true);
    } else if (dice < 80) {
      do_read(rng, *thin, index);
    } else if (dice < 88) {
      do_discard(rng, *thin, index);
    } else {
      do_flush();
    }
    if (!run_.failure.empty() || op_done()) break;
  }
  --live_workers_;
}

void PoolBoot::do_write(Random& rng, uint64_t thin, uint32_t worker, bool fua) {
  const auto [s0, s1] = pick_range(rng, worker, rng.chance(0.3));
  const uint64_t id = run_.next_write_id++;
  AlignedBuffer buf((s1 - s0) * kSector);
  for (uint64_t s = s0; s < s1; ++s) fill_sector(buf.data() + (s - s0) * kSector, id, s);
  {
    ThinModel& m = run_.thins.at(thin);
    for (uint64_t s = s0; s < s1; ++s) {
      m.at(s).since.emplace_back(id, kInFlight);
      run_.dirty.insert({thin, s});
    }
  }
  run_.log("write " + std::to_string(id) + " thin " + std::to_string(thin) + " sectors " +
           std::to_string(s0) + ".." + std::to_string(s1) + (fua ? " fua" : ""));
  const Status st = pool_->write(ThinId(thin), s0 * kSector, buf.span(), fua);
  if (stopping_ && !st.ok()) return;
  if (st.code() == Errc::not_found && run_.thins.count(thin) == 0) return;  // deleted meanwhile
  if (!st.ok()) return run_.fail("write thin " + std::to_string(thin) + ": " + st.to_string());
  ++run_.counts.writes;
  if (fua) ++run_.counts.fua;
  auto it = run_.thins.find(thin);
  if (it == run_.thins.end()) return;  // deleted meanwhile
  const uint64_t seq = ++run_.ack_seq;
  for (uint64_t s = s0; s < s1; ++s) {
    SectorState& st2 = it->second.at(s);
    st2.current = {id};
    for (auto& e : st2.since) {
      if (e.first == id) e.second = seq;
    }
    if (fua) {
      // Durable now: what came before it can no longer come back.
      st2.base = id;
      std::erase_if(st2.since, [&](const auto& e) { return e.second <= seq; });
    }
  }
  run_.digest.add_u64(id);
}

void PoolBoot::do_read(Random& rng, uint64_t thin, uint32_t worker) {
  const auto [s0, s1] = pick_range(rng, worker, false);
  AlignedBuffer buf((s1 - s0) * kSector);
  const Status st = pool_->read(ThinId(thin), s0 * kSector, buf.span());
  if (stopping_ && !st.ok()) return;
  if (st.code() == Errc::not_found && run_.thins.count(thin) == 0) return;  // deleted meanwhile
  if (!st.ok()) return run_.fail("read thin " + std::to_string(thin) + ": " + st.to_string());
  ++run_.counts.reads;
  if (run_.thins.count(thin) == 0) return;
  check_read(thin, s0, buf, false);
}

void PoolBoot::do_discard(Random& rng, uint64_t thin, uint32_t worker) {
  const auto [s0, s1] = pick_range(rng, worker, true);
  {
    ThinModel& m = run_.thins.at(thin);
    for (uint64_t s = s0; s < s1; ++s) {
      m.at(s).since.emplace_back(0, kInFlight);
      run_.dirty.insert({thin, s});
    }
  }
  run_.log("discard thin " + std::to_string(thin) + " sectors " + std::to_string(s0) + ".." +
           std::to_string(s1));
  const Status st = pool_->discard(ThinId(thin), s0 * kSector, (s1 - s0) * kSector);
  if (stopping_ && !st.ok()) return;
  if (st.code() == Errc::not_found && run_.thins.count(thin) == 0) return;  // deleted meanwhile
  if (!st.ok()) return run_.fail("discard thin " + std::to_string(thin) + ": " + st.to_string());
  ++run_.counts.discards;
  auto it = run_.thins.find(thin);
  if (it == run_.thins.end()) return;
  const uint64_t seq = ++run_.ack_seq;
  for (uint64_t s = s0; s < s1; ++s) {
    SectorState& ss = it->second.at(s);
    ss.current = {0};
    for (auto& e : ss.since) {
      if (e.first == 0 && e.second == kInFlight) e.second = seq;
    }
  }
}

void PoolBoot::do_flush() {
  const uint64_t started = run_.ack_seq;
  run_.log("flush from seq " + std::to_string(started));
  const Status st = pool_->flush();
  if (stopping_ && !st.ok()) return;
  if (!st.ok()) return run_.fail("flush: " + st.to_string());
  ++run_.counts.flushes;
  // Everything acknowledged before the flush started is durable: per
  // sector, the newest such write is the new base.
  for (auto it = run_.dirty.begin(); it != run_.dirty.end();) {
    auto t = run_.thins.find(it->first);
    if (t == run_.thins.end()) {
      it = run_.dirty.erase(it);
      continue;
    }
    SectorState& ss = t->second.at(it->second);
    std::optional<uint64_t> newest;
    uint64_t newest_seq = 0;
    for (const auto& [id, seq] : ss.since) {
      if (seq != kInFlight && seq <= started && seq >= newest_seq) {
        newest = id;
        newest_seq = seq;
      }
    }
    if (newest.has_value()) {
      ss.base = *newest;
      std::erase_if(ss.since, [&](const auto& e) { return e.second <= started; });
    }
    it = ss.since.empty() ? run_.dirty.erase(it) : std::next(it);
  }
}

void PoolBoot::manager(Random rng) {
  while (!stopping_ && run_.failure.empty()) {
    sched_.sleep(std::chrono::microseconds(100 + rng.uniform(3000)));
    if (stopping_ || live_workers_ == 0) break;
    const uint64_t dice = rng.uniform(100);
    const size_t live = run_.thins.size();
    if (live == 0 || (dice < 30 && live < kMaxThins)) {
      const uint64_t id = run_.next_thin++;
      in_flight_mgmt_.insert(id);
      const Status s = pool_->create_thin(ThinId(id), run_.plan.thin_bytes());
      if (stopping_) return;
      in_flight_mgmt_.erase(id);
      if (!s.ok()) return run_.fail("create thin " + std::to_string(id) + ": " + s.to_string());
      run_.thins[id] = ThinModel{};
      ++run_.counts.creates;
    } else if (dice < 60 && live < kMaxThins) {
      std::optional<uint64_t> origin = pick_thin(rng);
      if (!origin.has_value()) continue;
      const uint64_t id = run_.next_thin++;
      in_flight_mgmt_.insert(id);
      run_.log("snapshot " + std::to_string(*origin) + " -> " + std::to_string(id));
      const Status s = pool_->create_snapshot(ThinId(*origin), ThinId(id));
      if (stopping_) return;
      in_flight_mgmt_.erase(id);
      if (!s.ok())
        return run_.fail("snapshot of " + std::to_string(*origin) + ": " + s.to_string());
      // The snapshot has what the origin had; a write to the origin in
      // flight during the snapshot may or may not be in it.
      ThinModel copy = run_.thins.at(*origin);
      copy.busy = false;
      for (auto& [s, ss] : copy.sectors) {
        for (const auto& [wid, seq] : ss.since) {
          if (seq == kInFlight &&
              std::find(ss.current.begin(), ss.current.end(), wid) == ss.current.end()) {
            ss.current.push_back(wid);
          }
        }
        if (!ss.since.empty()) run_.dirty.insert({id, s});
      }
      run_.thins[id] = std::move(copy);
      ++run_.counts.snapshots;
    } else if (dice < 85 && live > 1) {
      std::optional<uint64_t> victim = pick_thin(rng);
      if (!victim.has_value()) continue;
      run_.thins.at(*victim).busy = true;
      in_flight_mgmt_.insert(*victim);
      run_.log("delete " + std::to_string(*victim));
      const Status s = pool_->delete_thin(ThinId(*victim));
      if (stopping_) return;
      in_flight_mgmt_.erase(*victim);
      if (!s.ok())
        return run_.fail("delete thin " + std::to_string(*victim) + ": " + s.to_string());
      run_.thins.erase(*victim);
      ++run_.counts.deletes;
    } else {
      const uint64_t current = pool_->status().store.transaction_id;
      const Status s = pool_->set_transaction_id(current, current + 1);
      if (stopping_) return;
      if (!s.ok()) return run_.fail("set_transaction_id: " + s.to_string());
      const Status wrong = pool_->set_transaction_id(current, current + 2);
      if (wrong.code() != Errc::conflict) {
        return run_.fail("set_transaction_id with a stale value: " + wrong.to_string());
      }
    }
  }
}

}  // namespace

ScenarioResult run_pool_scenario(const ScenarioOptions& options) {
  for (const std::string& b : options.bugs) {
    if (b != "pool-data-no-fua") {
      return ScenarioResult{false, 0, "", "unknown bug '" + b + "' (pool knows: pool-data-no-fua)"};
    }
  }
  Random rng(options.seed);
  PoolRun run(options, rng);
  const uint64_t total_ops = options.ops != 0 ? options.ops : kPoolScenarioDefaultOps;
  const uint64_t per_boot = std::max<uint64_t>(1, total_ops / (run.plan.crash_boots + 1));
  // A crash sweep's run: one workload boot of the whole budget, cut at the
  // chosen event (UINT64_MAX: at its end, which is how the sweep counts the
  // crash points), then recovery and a clean close.
  const bool crash_point = options.crash_after_events != 0;
  if (crash_point) {
    run.plan.crash_boots = 0;  // the cut boot, then the recovery check and a clean close
    run.crash_rng = Random(options.seed * 0x9e3779b97f4a7c15ULL ^ (options.crash_state + 1));
  }
  uint64_t first_boot_events = 0;
  run.log("plan: block=" + std::to_string(run.plan.data_block_bytes) +
          " journal=" + std::to_string(run.plan.journal_blocks) +
          " cache=" + std::to_string(run.plan.cache_pages) +
          " crash_boots=" + std::to_string(run.plan.crash_boots));
  {
    PoolBoot format_boot(run, 0, false);
    format_boot.execute(true);
  }
  for (uint32_t b = 0; b <= run.plan.crash_boots && run.failure.empty(); ++b) {
    ++run.boot;
    // A crash boot runs a random share of its budget, then loses power.
    const uint64_t budget = crash_point ? total_ops : 1 + run.work_rng.uniform(2 * per_boot);
    PoolBoot boot(run, budget, false);
    boot.execute(false, b == 0 ? options.crash_after_events : 0);
    if (b == 0) first_boot_events = boot.events_run();
    if (!run.failure.empty()) break;
    boot.crash();
  }
  if (run.failure.empty()) {
    ++run.boot;
    PoolBoot last(run, 0, true);
    last.execute(false);
  }
  if (run.failure.empty()) {
    // Reopened after a clean close: the same contents, clean.
    ++run.boot;
    PoolBoot again(run, 0, true);
    again.execute(false);
  }
  const Counts& c = run.counts;
  std::ostringstream summary;
  summary << "block=" << run.plan.data_block_bytes << " writes=" << c.writes << " fua=" << c.fua
          << " reads=" << c.reads << " discards=" << c.discards << " flushes=" << c.flushes
          << " creates=" << c.creates << " snapshots=" << c.snapshots << " deletes=" << c.deletes
          << " crashes=" << c.crashes << " sectors_checked=" << c.sectors_checked;
  ScenarioResult result;
  result.crash_points = first_boot_events;
  result.passed = run.failure.empty();
  run.digest.add_u64(run.trace.digest());
  result.digest = run.digest.value();
  result.summary = summary.str();
  result.failure =
      run.failure.empty() ? "" : "seed " + std::to_string(options.seed) + " " + run.failure;
  return result;
}

}  // namespace thinp::scenarios
