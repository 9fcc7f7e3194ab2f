#include "scenarios/disk_scenario.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>

#include "engine/base/hash.h"
#include "engine/base/random.h"
#include "engine/io/block_device.h"
#include "sim/scheduler.h"
#include "sim/sim_disk.h"

namespace thinp::scenarios {
namespace {

using models::DiskModel;
using sim::TraceEvent;
using sim::TraceKind;

constexpr uint64_t kContentMagic = 0x7468696e70326473ULL;  // "thinp2ds"
constexpr uint64_t kMaxIoSectors = 16;
constexpr uint64_t kScanChunkBytes = 64 * 1024;
constexpr uint64_t kMaxEventsPerBoot = 5'000'000;  // liveness bound, far above any real run

// Everything one run decides from its seed before the first IO.
struct DiskPlan {
  uint32_t sector_bytes = 512;
  uint64_t sector_count = 0;
  uint32_t task_count = 2;
  sim::FaultConfig faults;
  sim::CrashOptions crash;
  sim::DiskBugs bugs;
  // Op mix weights: read, write, fua write, flush, discard.
  uint32_t weights[5] = {};
};

struct DiskCounts {
  uint64_t ops = 0, reads = 0, reads_checked = 0, writes = 0, fua_writes = 0, flushes = 0;
  uint64_t discards = 0, read_errors = 0, write_errors = 0, no_space = 0, boots = 0;
  uint64_t crashes = 0, overlap_skips = 0;
  uint64_t faults[sim::kFaultKindCount] = {};
};

// The state of a run that outlives crashes: media, trace, model, counters.
struct DiskRun {
  const ScenarioOptions& options;
  DiskPlan plan;
  uint64_t total_ops = 0;
  Random disk_rng, workload_rng, crash_rng, sched_rng;
  std::unique_ptr<sim::DiskMedia> media;
  std::unique_ptr<sim::IoTrace> trace;
  std::unique_ptr<DiskModel> model;
  DiskCounts counts;
  std::string failure;
  // A read the trace showed to be wrong: reported by the reading task, which
  // can also say whose data it got, or at the end of the boot if the task
  // never resumed.
  std::string deferred_read_failure;
  sim::Scheduler* sched = nullptr;  // the current boot's, for request_stop()

  DiskRun(const ScenarioOptions& o, Random& root)
      : options(o),
        disk_rng(root.fork()),
        workload_rng(root.fork()),
        crash_rng(root.fork()),
        sched_rng(root.fork()) {}

  void fail(std::string why) {
    if (!failure.empty()) return;
    failure = "seed " + std::to_string(options.seed) + " boot " + std::to_string(counts.boots - 1) +
              ": " + std::move(why);
    if (sched) sched->request_stop();
  }
  void log(const std::string& line) const {
    if (options.verbose && options.log) *options.log << line << "\n";
  }
};

DiskPlan make_plan(Random& rng, const sim::DiskBugs& bugs) {
  DiskPlan p;
  p.sector_bytes = rng.chance(0.5) ? 512 : 4096;
  p.sector_count = rng.range(64, 512);
  p.task_count = static_cast<uint32_t>(rng.range(2, 6));
  p.faults = sim::random_swarm_faults(rng, p.sector_count * p.sector_bytes, p.sector_bytes);
  static constexpr uint32_t kTears[] = {1, 2, 4, 8};
  static constexpr double kTearP[] = {0.0, 0.1, 0.3, 0.5};
  static constexpr double kKeepP[] = {0.2, 0.5, 0.8};
  p.crash.tear_sectors = kTears[rng.uniform(4)];
  p.crash.tear_probability = kTearP[rng.uniform(4)];
  p.crash.keep_probability = kKeepP[rng.uniform(3)];
  p.bugs = bugs;
  p.weights[0] = static_cast<uint32_t>(rng.range(30, 50));
  p.weights[1] = static_cast<uint32_t>(rng.range(20, 40));
  p.weights[2] = static_cast<uint32_t>(rng.range(0, 15));
  p.weights[3] = static_cast<uint32_t>(rng.range(3, 15));
  p.weights[4] = static_cast<uint32_t>(rng.range(0, 5));
  return p;
}

std::string plan_summary(const DiskPlan& p) {
  std::ostringstream os;
  os << "sector=" << p.sector_bytes << " sectors=" << p.sector_count << " tasks=" << p.task_count
     << " tear=" << p.crash.tear_sectors << " tear_p=" << p.crash.tear_probability
     << " keep_p=" << p.crash.keep_probability << " faults=[" << p.faults.to_string() << "]";
  if (p.bugs.flush_noop) os << " BUG=flush_noop";
  if (p.bugs.hide_lost_writes) os << " BUG=hide_lost_writes";
  return os.str();
}

// Self-describing content: every sector names the write and sector it
// belongs to, so failure messages can say whose data a read found.
void fill_sector(std::span<std::byte> sector, uint64_t io_id, uint64_t sector_index, uint64_t seed) {
  const uint64_t header[4] = {kContentMagic, io_id, sector_index, seed};
  std::memcpy(sector.data(), header, sizeof header);
  uint64_t state = io_id * 0x9e3779b97f4a7c15ULL ^ sector_index ^ (seed << 32);
  for (size_t off = sizeof header; off < sector.size(); off += 8) {
    const uint64_t w = splitmix64(state);
    std::memcpy(sector.data() + off, &w, 8);
  }
}

std::string describe_sector(std::span<const std::byte> sector) {
  uint64_t header[4];
  std::memcpy(header, sector.data(), sizeof header);
  if (std::all_of(sector.begin(), sector.end(), [](std::byte b) { return b == std::byte{0}; })) {
    return "zeros";
  }
  if (header[0] != kContentMagic) return "unrecognised bytes";
  std::vector<std::byte> expect(sector.size());
  fill_sector(expect, header[1], header[2], header[3]);
  const bool intact = std::equal(expect.begin(), expect.end(), sector.begin());
  return std::string(intact ? "" : "corrupted ") + "data of write io#" +
         std::to_string(header[1]) + " for sector " + std::to_string(header[2]);
}

std::vector<uint64_t> sector_hashes(std::span<const std::byte> data, uint32_t sector_bytes) {
  std::vector<uint64_t> out;
  for (size_t off = 0; off < data.size(); off += sector_bytes) {
    out.push_back(hash_bytes(data.subspan(off, sector_bytes)));
  }
  return out;
}

// One boot of the disk: a fresh Scheduler and SimDisk over the run's media.
// First a scan of the whole device (it checks what the last crash left),
// then, unless this is the final scan-only boot, the worker tasks until the
// run's op counter reaches this boot's crash point.
class Boot {
 public:
  Boot(DiskRun& run, bool scan_only, uint64_t crash_at_ops)
      : run_(run),
        sched_(run.sched_rng.next_u64()),
        disk_(sched_, *run.media, *run.trace, disk_options(run), run.disk_rng.fork()),
        scan_only_(scan_only),
        crash_at_ops_(crash_at_ops) {}
  ~Boot() {
    sched_.kill_all_tasks();  // tasks refer to disk_, which dies first
    run_.sched = nullptr;
  }

  sim::RunOutcome execute() {
    run_.sched = &sched_;
    sched_.spawn("scan", [this] { scan(); });
    const sim::RunOutcome out = sched_.run({.max_events = kMaxEventsPerBoot});
    if (out == sim::RunOutcome::deadlock) run_.fail("deadlock: " + sched_.deadlock_report());
    if (out == sim::RunOutcome::task_failed) run_.fail(sched_.failure());
    if (out == sim::RunOutcome::event_limit) run_.fail("event limit reached (livelock?)");
    if (!run_.deferred_read_failure.empty()) run_.fail(run_.deferred_read_failure);
    return out;
  }

  // Power loss at this point: every task dies mid-IO, then the disk decides
  // what reached the media.
  void crash() {
    sched_.kill_all_tasks();
    const sim::CrashReport report = disk_.crash(run_.crash_rng, run_.plan.crash);
    ++run_.counts.crashes;
    run_.log("crash: " + report.summary());
  }

 private:
  static sim::SimDiskOptions disk_options(const DiskRun& run) {
    sim::SimDiskOptions o;
    o.name = "sim-disk#" + std::to_string(run.counts.boots - 1);
    o.faults = run.plan.faults;
    o.bugs = run.plan.bugs;
    return o;
  }

  uint32_t sb() const { return run_.plan.sector_bytes; }

  void scan() {
    const uint64_t size = disk_.size_bytes();
    for (uint64_t off = 0; off < size && run_.failure.empty(); off += kScanChunkBytes) {
      checked_read(off / sb(), std::min(kScanChunkBytes, size - off) / sb());
    }
    if (scan_only_) return;
    for (uint32_t i = 0; i < run_.plan.task_count; ++i) {
      sched_.spawn("worker" + std::to_string(i), [this, rng = run_.workload_rng.fork()]() mutable {
        work(rng);
      });
    }
  }

  void work(Random& rng) {
    const uint32_t* w = run_.plan.weights;
    const uint64_t total_weight = uint64_t{w[0]} + w[1] + w[2] + w[3] + w[4];
    while (run_.failure.empty()) {
      if (run_.counts.ops >= crash_at_ops_) {
        sched_.request_stop();  // the crash point: the scenario pulls the plug
        return;
      }
      ++run_.counts.ops;
      uint64_t pick = rng.uniform(total_weight);
      size_t op = 0;
      while (pick >= w[op]) pick -= w[op++];
      const uint64_t count = rng.range(1, std::min(kMaxIoSectors, run_.plan.sector_count));
      const uint64_t first = rng.uniform(run_.plan.sector_count - count + 1);
      switch (op) {
        case 0: checked_read(first, count); break;
        case 1: write(rng, first, count, false, false); break;
        case 2: write(rng, first, count, true, false); break;
        case 3: flush(); break;
        default: write(rng, first, count, false, true); break;
      }
    }
  }

  void checked_read(uint64_t first, uint64_t count) {
    AlignedBuffer buf(count * sb());
    const uint64_t id = disk_.next_io_id();
    const Status st = disk_.read(first * sb(), buf.span());
    ++run_.counts.reads;
    if (st.code() == Errc::io_error) {
      ++run_.counts.read_errors;
      return;
    }
    if (!st.ok()) return run_.fail("read io#" + std::to_string(id) + " failed: " + st.to_string());
    uint64_t bad = first;
    const Status c = run_.model->check_read(id, sector_hashes(buf.span(), sb()), &bad);
    if (c.ok()) {
      ++run_.counts.reads_checked;
      return;
    }
    run_.fail("the disk broke its contract: " + c.message() + "; sector " + std::to_string(bad) +
              " holds " + describe_sector(buf.span().subspan((bad - first) * sb(), sb())) +
              "; crash options tear=" + std::to_string(run_.plan.crash.tear_sectors));
  }

  // Overlapping writes must never be in flight together (the contract), so
  // a write first reserves its range among the writes this boot has in flight.
  bool reserve(uint64_t first, uint64_t count) {
    auto next = writes_in_flight_.lower_bound(first);
    if (next != writes_in_flight_.end() && next->first < first + count) return false;
    if (next != writes_in_flight_.begin() && std::prev(next)->second > first) return false;
    writes_in_flight_.emplace(first, first + count);
    return true;
  }

  void write(Random& rng, uint64_t first, uint64_t count, bool fua, bool discard) {
    for (int attempt = 0; !reserve(first, count); ++attempt) {
      if (attempt == 3) {
        ++run_.counts.overlap_skips;
        return;
      }
      first = rng.uniform(run_.plan.sector_count - count + 1);
    }
    const uint64_t id = disk_.next_io_id();
    Status st;
    if (discard) {
      ++run_.counts.discards;
      st = disk_.discard(first * sb(), count * sb());
    } else {
      ++(fua ? run_.counts.fua_writes : run_.counts.writes);
      AlignedBuffer buf(count * sb());
      for (uint64_t i = 0; i < count; ++i) {
        fill_sector(buf.span().subspan(i * sb(), sb()), id, first + i, run_.options.seed);
      }
      st = disk_.write(first * sb(), buf.span(), fua);
    }
    writes_in_flight_.erase(first);
    if (st.ok()) return;
    if (st.code() == Errc::no_space) return void(++run_.counts.no_space);
    if (st.code() == Errc::io_error) return void(++run_.counts.write_errors);
    run_.fail("write io#" + std::to_string(id) + " failed: " + st.to_string());
  }

  void flush() {
    ++run_.counts.flushes;
    const Status st = disk_.flush();
    if (st.code() == Errc::io_error) return void(++run_.counts.write_errors);
    if (!st.ok()) run_.fail("flush failed: " + st.to_string());
  }

  DiskRun& run_;
  sim::Scheduler sched_;
  sim::SimDisk disk_;
  bool scan_only_;
  uint64_t crash_at_ops_;
  std::map<uint64_t, uint64_t> writes_in_flight_;  // first sector -> end sector
};

std::string summary_line(const DiskRun& run) {
  const DiskCounts& c = run.counts;
  const models::DiskModelStats& m = run.model->stats();
  auto f = [&](sim::FaultKind k) { return c.faults[static_cast<size_t>(k)]; };
  std::ostringstream os;
  os << "ops=" << c.ops << " boots=" << c.boots << " crashes=" << c.crashes << " reads=" << c.reads
     << " reads_checked=" << c.reads_checked << " sectors_checked=" << m.sectors_checked
     << " writes=" << c.writes << " fua=" << c.fua_writes << " flushes=" << c.flushes
     << " discards=" << c.discards << " read_errors=" << c.read_errors
     << " write_errors=" << c.write_errors << " no_space=" << c.no_space
     << " lost=" << f(sim::FaultKind::lost_write) << " misdirected=" << f(sim::FaultKind::misdirect)
     << " bit_flips=" << f(sim::FaultKind::bit_flip) << " slow=" << f(sim::FaultKind::slow)
     << " overlap_skips=" << c.overlap_skips << " pinned=" << m.sectors_pinned << " trace_events=" << run.trace->event_count() << " "
     << plan_summary(run.plan);
  return os.str();
}

}  // namespace

ScenarioResult run_disk_scenario(const ScenarioOptions& options) {
  return run_disk_scenario_traced(options, options.trace_path);
}

ScenarioResult run_disk_scenario_traced(const ScenarioOptions& options,
                                        const std::string& trace_path) {
  ScenarioResult result;
  sim::DiskBugs bugs;
  for (const std::string& bug : options.bugs) {
    if (bug == "disk-flush-noop") {
      bugs.flush_noop = true;
    } else if (bug == "disk-hidden-lost-write") {
      bugs.hide_lost_writes = true;
    } else {
      result.failure = "unknown bug '" + bug +
                       "' for scenario disk (known: disk-flush-noop, disk-hidden-lost-write)";
      return result;
    }
  }
  Random root(options.seed);
  Random plan_rng = root.fork();
  DiskRun run(options, root);
  run.plan = make_plan(plan_rng, bugs);
  run.total_ops = options.ops != 0 ? options.ops : kDiskScenarioDefaultOps;
  run.media = std::make_unique<sim::DiskMedia>(run.plan.sector_bytes, run.plan.sector_count);
  run.trace = std::make_unique<sim::IoTrace>(sim::TraceOptions{.keep_events = !trace_path.empty()});
  run.model = std::make_unique<DiskModel>(run.plan.sector_bytes, run.plan.sector_count,
                                          run.media->zero_sector_hash());
  run.log("disk scenario seed " + std::to_string(options.seed) + ": " + plan_summary(run.plan));
  run.trace->set_observer([&run](const TraceEvent& ev) {
    if (run.options.verbose) run.log(sim::format_event(ev, /*with_sector_hashes=*/false));
    if (ev.kind != TraceKind::submit) ++run.counts.faults[static_cast<size_t>(ev.fault)];
    const Status s = feed_disk_model(*run.model, run.plan.sector_bytes, ev);
    if (s.ok()) return;
    const std::string why = "the disk broke its contract: " + s.message();
    if (ev.kind == TraceKind::complete && ev.op == IoOp::read) {
      if (run.deferred_read_failure.empty()) run.deferred_read_failure = why;
    } else {
      run.fail(why);
    }
  });

  while (run.failure.empty()) {
    ++run.counts.boots;
    const bool scan_only = run.counts.ops >= run.total_ops;
    const uint64_t stretch = run.crash_rng.range(run.total_ops / 5, run.total_ops / 2) + 1;
    Boot boot(run, scan_only, std::min(run.total_ops, run.counts.ops + stretch));
    const sim::RunOutcome out = boot.execute();
    if (!run.failure.empty()) break;
    if (scan_only) {
      if (out != sim::RunOutcome::idle) run.fail("final scan ended " + std::string(run_outcome_name(out)));
      break;
    }
    if (out != sim::RunOutcome::stopped) {
      run.fail("boot ended " + std::string(run_outcome_name(out)) + " before its crash point");
      break;
    }
    boot.crash();
  }

  result.passed = run.failure.empty();
  result.failure = run.failure;
  result.summary = summary_line(run);
  Digest d;
  d.add_u64(run.trace->digest());
  d.add_u64(run.model->stats().sectors_checked);
  d.add_u64(run.counts.reads_checked);
  d.add_u64(run.counts.ops);
  result.digest = d.value();
  run.log("result: " + std::string(result.passed ? "pass " : "FAIL ") + result.summary);
  if (!trace_path.empty()) {
    const Status saved = run.trace->save(
        trace_path, "disk scenario seed " + std::to_string(options.seed) + " " + plan_summary(run.plan));
    if (!saved.ok()) {
      result.passed = false;
      if (result.failure.empty()) result.failure = "saving the trace: " + saved.to_string();
    }
  }
  return result;
}

Status feed_disk_model(DiskModel& model, uint32_t sector_bytes, const TraceEvent& ev) {
  const uint64_t first = ev.offset_bytes / sector_bytes;
  const bool ok = ev.status == Errc::ok;
  switch (ev.kind) {
    case TraceKind::submit:
      if (!ok) return ok_status();  // rejected by validation: not part of the contract
      if (ev.op == IoOp::read) model.read_submitted(ev.io_id, first, ev.length_bytes / sector_bytes);
      if (ev.op == IoOp::write || ev.op == IoOp::discard) {
        model.write_submitted(ev.io_id, first, ev.sector_hashes, ev.fua);
      }
      if (ev.op == IoOp::flush) model.flush_submitted(ev.io_id);
      return ok_status();
    case TraceKind::complete: {
      if (ev.status == Errc::invalid_argument) return ok_status();
      if (ev.op == IoOp::read) return model.read_completed(ev.io_id, ok, ev.sector_hashes);
      if (ev.op == IoOp::flush) {
        model.flush_completed(ev.io_id, ok);
        return ok_status();
      }
      models::WriteOutcome outcome = models::WriteOutcome::applied;
      if (!ok) outcome = models::WriteOutcome::failed;
      if (ok && ev.fault == sim::FaultKind::lost_write) outcome = models::WriteOutcome::lost;
      const uint64_t landed =
          ev.fault == sim::FaultKind::misdirect ? ev.fault_offset_bytes / sector_bytes : first;
      model.write_completed(ev.io_id, outcome, landed);
      return ok_status();
    }
    case TraceKind::corrupt:
      return model.media_corrupted(ev.io_id, ev.fault_offset_bytes / sector_bytes, ev.prior_hash,
                                   ev.content_hash);
    case TraceKind::crash: model.crash(); return ok_status();
    case TraceKind::boot: return ok_status();
  }
  return ok_status();
}

Result<models::DiskModelStats> replay_disk_trace(const sim::LoadedTrace& trace) {
  auto boot = std::find_if(trace.events.begin(), trace.events.end(),
                           [](const TraceEvent& e) { return e.kind == TraceKind::boot; });
  if (boot == trace.events.end()) return Status(Errc::invalid_argument, "trace has no boot event");
  const uint64_t sb = boot->offset_bytes;
  if ((sb != 512 && sb != 4096) || boot->length_bytes == 0 || boot->length_bytes % sb != 0) {
    return Status(Errc::corruption, "trace boot event has a bad geometry");
  }
  const std::vector<std::byte> zeros(sb, std::byte{0});
  DiskModel model(static_cast<uint32_t>(sb), boot->length_bytes / sb, hash_bytes(zeros));
  for (const TraceEvent& ev : trace.events) {
    Status s = feed_disk_model(model, static_cast<uint32_t>(sb), ev);
    if (!s.ok()) return s.with_context("trace event " + std::to_string(ev.seq));
    if (ev.kind == TraceKind::complete && ev.op == IoOp::read && ev.status == Errc::ok) {
      TP_RETURN_IF_ERROR(model.check_read(ev.io_id, ev.sector_hashes));
    }
  }
  return model.stats();
}

}  // namespace thinp::scenarios
