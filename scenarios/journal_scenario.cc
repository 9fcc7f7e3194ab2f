#include "scenarios/journal_scenario.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>

#include "engine/base/hash.h"
#include "engine/base/random.h"
#include "engine/pool/metadata_store.h"
#include "scenarios/journal_model.h"
#include "scenarios/journal_scenario_txns.h"
#include "sim/scheduler.h"
#include "sim/sim_disk.h"

namespace thinp::scenarios {
namespace {

using pool::MetadataStore;
using sim::RunOutcome;

constexpr uint64_t kMaxEventsPerBoot = 20'000'000;  // liveness bound, far above any real run
// A livelock guard. Every boot that hits an IO fault ends (the store fails)
// and the run reboots, so fault-heavy plans with a tiny journal (whose
// reclaims checkpoint often) need many boots to finish their ops.
constexpr uint64_t kMaxBoots = 200;       // open failures included
constexpr uint64_t kMaxRecoveryCuts = 2;  // boots cut short inside open()

// Everything one run decides from its seed before the first IO.
struct JournalPlan {
  uint32_t sector_bytes = 512;
  uint64_t metadata_blocks = 0;
  uint64_t data_block_bytes = 4096;
  uint64_t data_blocks = 0;
  uint64_t journal_blocks = 0;  // 0: the layout's default
  uint64_t cache_pages = 0;
  bool journal_use_fua = true;
  bool skip_durability = false;  // the "journal-no-durability" bug
  bool io_errors = false;        // read/write errors in the swarm
  uint32_t task_count = 2;
  sim::LatencyConfig latency;
  sim::FaultConfig faults;
  sim::CrashOptions crash;
  uint32_t weights[kTxnKindCount] = {};
  uint64_t think_max_ns = 0;         // a worker's pause between transactions
  uint64_t checkpoint_every_ns = 0;  // the checkpointer's mean interval
  uint64_t crash_delay_max_ns = 0;   // crash this long (at most) after the crash op
  double recovery_cut_probability = 0;
  TxnLimits limits;
  std::vector<uint64_t> crash_points;  // op counts, increasing
};

struct JournalCounts {
  uint64_t ops = 0, staged = 0, acknowledged = 0, commit_failures = 0, withdrawn = 0;
  uint64_t read_checks = 0;
  uint64_t staging_io_errors = 0, no_space = 0, boots = 0, crashes = 0, recovery_cuts = 0;
  uint64_t open_failures = 0, store_failures = 0, verify_skips = 0, checkpoints = 0;
  uint64_t checkpoint_failures = 0, checks = 0, check_skips = 0, recoveries = 0;
  uint64_t lost_in_flight = 0;  // staged commits that recovery did not find
  uint64_t disk_writes = 0, fua_writes = 0, flushes = 0, io_errors = 0, slow = 0;
  uint64_t journal_commits = 0, journal_batches = 0, journal_writes = 0;  // the store's figures
  uint64_t committed[kTxnKindCount] = {};
  std::string prefixes;  // "p/s>=r" per recovery
};

// The state of a run that outlives crashes: media, trace, oracle, counts.
struct JournalRun {
  const ScenarioOptions& options;
  JournalPlan plan;
  uint64_t total_ops = 0;
  Random disk_rng, workload_rng, crash_rng, sched_rng;
  std::unique_ptr<sim::DiskMedia> media;
  std::unique_ptr<sim::IoTrace> trace;
  CommitOracle oracle{PoolModel{}};
  JournalCounts counts;
  Digest digest;
  std::string failure;
  bool closed_cleanly = false;       // the final boot closed the store
  int64_t last_open_ns = 2'000'000;  // how long the last open took (virtual)
  sim::Scheduler* sched = nullptr;   // the current boot's, for request_stop()

  JournalRun(const ScenarioOptions& o, Random& root)
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

sim::LatencyConfig draw_latency(Random& rng) {
  sim::LatencyConfig l;
  const int64_t scale = static_cast<int64_t>(rng.range(1, 4));
  l.read_min = Nanos(20'000 * scale);
  l.read_max = Nanos(120'000 * scale);
  l.write_min = Nanos(30'000 * scale);
  l.write_max = Nanos(static_cast<int64_t>(rng.range(60'000, 400'000)) * scale);
  l.flush_min = Nanos(100'000 * scale);
  l.flush_max = Nanos(600'000 * scale);
  static constexpr double kTail[] = {0.0, 0.01, 0.03};
  l.tail_probability = kTail[rng.uniform(3)];
  return l;
}

// Slow IO on half the seeds; read and write errors on a third of them, rare
// enough that most boots still commit something. Silent faults (lost,
// misdirected, corrupted writes) are not part of the journal's contract.
sim::FaultConfig draw_faults(Random& rng, bool& io_errors) {
  sim::FaultConfig f;
  if (rng.chance(0.5)) f.slow = 0.002 * static_cast<double>(rng.range(1, 10));
  f.slow_factor = static_cast<uint32_t>(rng.range(5, 50));
  io_errors = rng.chance(1.0 / 3);
  if (io_errors) {
    f.read_error = rng.chance(0.5) ? 0.0005 * static_cast<double>(rng.range(1, 4)) : 0;
    f.write_error = rng.chance(0.7) ? 0.001 * static_cast<double>(rng.range(1, 5)) : 0;
    io_errors = f.read_error > 0 || f.write_error > 0;
  }
  return f;
}

JournalPlan make_plan(Random& rng, uint64_t total_ops, bool skip_durability) {
  JournalPlan p;
  p.sector_bytes = rng.chance(0.5) ? 512 : 4096;
  p.metadata_blocks = rng.range(256, 1024);
  p.data_block_bytes = uint64_t{4096} << rng.uniform(3);
  p.data_blocks = rng.range(600, 4000);
  static constexpr uint64_t kJournal[] = {0, 8, 12, 16, 32, 64};
  p.journal_blocks = kJournal[rng.uniform(6)];
  static constexpr uint64_t kCache[] = {24, 64, 256, 4096};
  p.cache_pages = kCache[rng.uniform(4)];
  p.journal_use_fua = rng.chance(0.5);
  p.skip_durability = skip_durability;
  p.task_count = static_cast<uint32_t>(rng.range(2, 5));
  p.latency = draw_latency(rng);
  p.faults = draw_faults(rng, p.io_errors);
  static constexpr uint32_t kTears[] = {1, 2, 8};
  static constexpr double kTearP[] = {0.0, 0.2, 0.5};
  static constexpr double kKeepP[] = {0.2, 0.5, 0.8};
  p.crash.tear_sectors = kTears[rng.uniform(3)];
  p.crash.tear_probability = kTearP[rng.uniform(3)];
  p.crash.keep_probability = kKeepP[rng.uniform(3)];
  p.weights[static_cast<size_t>(TxnKind::create)] = static_cast<uint32_t>(rng.range(5, 15));
  p.weights[static_cast<size_t>(TxnKind::map)] = static_cast<uint32_t>(rng.range(30, 50));
  p.weights[static_cast<size_t>(TxnKind::unmap)] = static_cast<uint32_t>(rng.range(5, 20));
  p.weights[static_cast<size_t>(TxnKind::snapshot)] = static_cast<uint32_t>(rng.range(2, 10));
  p.weights[static_cast<size_t>(TxnKind::remove)] = static_cast<uint32_t>(rng.range(1, 6));
  p.weights[static_cast<size_t>(TxnKind::read_check)] = static_cast<uint32_t>(rng.range(2, 8));
  p.think_max_ns = rng.range(0, 3) * 100'000;
  p.checkpoint_every_ns = rng.range(1, 10) * 500'000;
  p.crash_delay_max_ns = rng.range(1, 8) * 250'000;
  p.recovery_cut_probability = rng.chance(0.5) ? 0.3 : 0.0;
  p.limits.thin_ids = rng.range(4, 24);
  const uint64_t crashes = rng.range(2, 5);
  for (uint64_t i = 0; i < crashes; ++i) p.crash_points.push_back(rng.range(1, total_ops - 1));
  std::sort(p.crash_points.begin(), p.crash_points.end());
  return p;
}

std::string plan_summary(const JournalPlan& p) {
  std::ostringstream os;
  os << "sector=" << p.sector_bytes << " meta_blocks=" << p.metadata_blocks
     << " data_blocks=" << p.data_blocks << "x" << p.data_block_bytes
     << " journal=" << p.journal_blocks << " cache=" << p.cache_pages
     << " commit=" << (p.journal_use_fua ? "fua" : "flush") << " tasks=" << p.task_count
     << " thin_ids=" << p.limits.thin_ids << " tear=" << p.crash.tear_sectors
     << " tear_p=" << p.crash.tear_probability << " keep_p=" << p.crash.keep_probability
     << " faults=[" << p.faults.to_string() << "]";
  if (p.skip_durability) os << " BUG=journal-no-durability";
  return os.str();
}

enum class BootKind {
  format,        // lay the pool out on a perfect disk
  work,          // open, verify, run transactions until the crash point (or the end)
  recovery_cut,  // open and verify, power cut at a random time inside it
  verify_clean,  // after a clean close: open, verify, check, close
};

// One boot: a fresh Scheduler and SimDisk over the run's media, and the
// store opened on them. Tasks run until the boot's end: a crash point, a
// failed store, or the end of the workload.
class JournalBoot {
 public:
  JournalBoot(JournalRun& run, BootKind kind, std::optional<uint64_t> crash_at_ops)
      : run_(run),
        sched_(run.sched_rng.next_u64()),
        disk_(sched_, *run.media, *run.trace, disk_options(run, kind), run.disk_rng.fork()),
        kind_(kind),
        crash_at_ops_(crash_at_ops) {}
  ~JournalBoot() {
    sched_.kill_all_tasks();  // tasks use the store and the disk, which die first
    store_.reset();
    run_.sched = nullptr;
  }

  RunOutcome execute(const sim::RunLimits& limits);
  // Power loss: every task dies mid-IO, then the disk decides what of its
  // volatile state reached the media.
  void crash();

 private:
  static sim::SimDiskOptions disk_options(const JournalRun& run, BootKind kind);
  void main_task();
  bool open_and_verify();
  void check_store();
  void close_store();
  void worker(Random rng);
  void checkpointer(Random rng);
  void run_txn(Random& rng);
  void commit_txn(std::unique_ptr<pool::MetadataTxn> txn, PoolModel next, TxnKind kind,
                  std::string what);
  // An error the faults explain: count it and, if the store failed, end the
  // boot (the run reboots). Otherwise a failure of the run.
  void expected_error(const Status& s, const std::string& during, uint64_t& counter);
  void end_boot() {
    stopping_ = true;
    sched_.request_stop();
  }

  JournalRun& run_;
  sim::Scheduler sched_;
  sim::SimDisk disk_;
  BootKind kind_;
  std::optional<uint64_t> crash_at_ops_;
  std::unique_ptr<MetadataStore> store_;
  uint32_t live_workers_ = 0;
  bool stopping_ = false;
};

sim::SimDiskOptions JournalBoot::disk_options(const JournalRun& run, BootKind kind) {
  sim::SimDiskOptions o;
  o.name = "sim-disk#" + std::to_string(run.counts.boots - 1);
  o.latency = run.plan.latency;
  if (kind != BootKind::format) o.faults = run.plan.faults;
  return o;
}

RunOutcome JournalBoot::execute(const sim::RunLimits& limits) {
  run_.sched = &sched_;
  sched_.spawn("main", [this] { main_task(); });
  sim::RunLimits l = limits;
  l.max_events = kMaxEventsPerBoot;
  const RunOutcome out = sched_.run(l);
  if (out == RunOutcome::deadlock) run_.fail("deadlock: " + sched_.deadlock_report());
  if (out == RunOutcome::task_failed) run_.fail(sched_.failure());
  if (out == RunOutcome::event_limit) run_.fail("event limit reached (livelock?)");
  return out;
}

void JournalBoot::crash() {
  sched_.kill_all_tasks();
  if (store_ != nullptr) {
    const pool::StoreStatus st = store_->status();
    run_.counts.journal_commits += st.journal_commits;
    run_.counts.journal_batches += st.journal_batches;
    run_.counts.journal_writes += st.journal_writes;
  }
  store_.reset();
  const sim::CrashReport report = disk_.crash(run_.crash_rng, run_.plan.crash);
  ++run_.counts.crashes;
  run_.log("crash at " + std::to_string(sched_.now().count()) + " ns: " + report.summary());
}

void JournalBoot::main_task() {
  if (kind_ == BootKind::format) {
    pool::FormatOptions fo;
    fo.data_block_bytes = run_.plan.data_block_bytes;
    fo.metadata_bytes = run_.plan.metadata_blocks * kMetadataBlockBytes;
    fo.journal_blocks = run_.plan.journal_blocks;
    const Status s = MetadataStore::format(sched_, disk_, nullptr, fo);
    if (!s.ok()) run_.fail("format: " + s.to_string());
    return;
  }
  if (!open_and_verify()) return;
  check_store();
  if (!run_.failure.empty() || stopping_) return;
  if (kind_ == BootKind::recovery_cut) return;
  if (kind_ == BootKind::verify_clean) return close_store();
  live_workers_ = run_.plan.task_count;
  for (uint32_t i = 0; i < run_.plan.task_count; ++i) {
    sched_.spawn("worker" + std::to_string(i),
                 [this, rng = run_.workload_rng.fork()]() mutable { worker(rng); });
  }
  sched_.spawn("checkpointer",
               [this, rng = run_.workload_rng.fork()]() mutable { checkpointer(rng); });
}

// Opens (recovering) and judges what recovery found. False when the boot
// cannot go on: the open or the read-back failed with an IO error (the
// boot ends and the run reboots) or the run failed.
bool JournalBoot::open_and_verify() {
  pool::OpenOptions oo;
  oo.cache_pages = run_.plan.cache_pages;
  oo.journal_use_fua = run_.plan.journal_use_fua;
  oo.unsafe_skip_durability = run_.plan.skip_durability;
  Result<std::unique_ptr<MetadataStore>> opened = MetadataStore::open(sched_, disk_, nullptr, oo);
  if (!opened.ok()) {
    expected_error(opened.status(), "open", run_.counts.open_failures);
    end_boot();
    return false;
  }
  store_ = std::move(opened).value();
  if (kind_ != BootKind::recovery_cut)
    run_.last_open_ns = std::max<int64_t>(sched_.now().count(), 1);
  Result<PoolModel> found = read_pool(*store_);
  if (!found.ok()) {
    expected_error(found.status(), "reading the recovered pool", run_.counts.verify_skips);
    end_boot();
    return false;
  }
  const size_t staged = run_.oracle.staged_count();
  Result<RecoveredPrefix> judged = run_.oracle.recover(*found, found->transaction_id);
  if (!judged.ok()) {
    run_.fail(judged.status().message() + "; " + model_summary(*found));
    return false;
  }
  ++run_.counts.recoveries;
  run_.counts.lost_in_flight += staged - judged->prefix;
  run_.counts.prefixes += (run_.counts.prefixes.empty() ? "" : ",") +
                          std::to_string(judged->prefix) + "/" + std::to_string(judged->staged) +
                          ">=" + std::to_string(judged->required);
  run_.digest.add_u64(model_digest(*found));
  run_.digest.add_u64(judged->prefix);
  run_.log("recovered prefix " + std::to_string(judged->prefix) + " of " +
           std::to_string(judged->staged) + " (acknowledged need " +
           std::to_string(judged->required) + "): " + model_summary(*found));
  return true;
}

void JournalBoot::check_store() {
  Result<std::vector<pool::CheckFinding>> findings = store_->check();
  if (!findings.ok()) return expected_error(findings.status(), "check", run_.counts.check_skips);
  ++run_.counts.checks;
  if (findings->empty()) return;
  std::string why = "check found " + std::to_string(findings->size()) + " problem(s):";
  for (size_t i = 0; i < findings->size() && i < 5; ++i) why += " [" + (*findings)[i].what + "]";
  run_.fail(why);
}

void JournalBoot::close_store() {
  const Status s = store_->close();
  if (!s.ok()) return expected_error(s, "close", run_.counts.store_failures);
  run_.closed_cleanly = true;
  run_.log("closed cleanly");
}

void JournalBoot::expected_error(const Status& s, const std::string& during, uint64_t& counter) {
  const bool explained = run_.plan.io_errors && s.code() == Errc::io_error;
  const bool store_failed = store_ != nullptr && store_->mode() == pool::StoreMode::failed;
  if (!explained && !(run_.plan.io_errors && store_failed)) {
    run_.fail(during + " failed: " + s.to_string());
    return;
  }
  ++counter;
  run_.log(during + " failed (IO fault): " + s.to_string());
  if (store_failed) {
    ++run_.counts.store_failures;
    end_boot();
  }
}

void JournalBoot::worker(Random rng) {
  while (!stopping_ && run_.failure.empty() && run_.counts.ops < run_.total_ops) {
    if (run_.plan.think_max_ns > 0) {
      sched_.sleep(Nanos(static_cast<int64_t>(rng.uniform(run_.plan.think_max_ns))));
      if (stopping_ || run_.counts.ops >= run_.total_ops) break;
    }
    run_txn(rng);
  }
  if (--live_workers_ > 0 || stopping_ || !run_.failure.empty()) return;
  if (crash_at_ops_.has_value()) return;  // the crash point ends this boot
  // The final boot: once the workload is done, a last check and a clean close.
  check_store();
  if (run_.failure.empty() && !stopping_) close_store();
}

void JournalBoot::checkpointer(Random rng) {
  while (!stopping_ && run_.failure.empty() && live_workers_ > 0) {
    sched_.sleep(Nanos(static_cast<int64_t>(rng.range(1, 2 * run_.plan.checkpoint_every_ns))));
    if (stopping_ || live_workers_ == 0) return;
    const Status s = store_->checkpoint();
    if (s.ok()) {
      ++run_.counts.checkpoints;
    } else {
      expected_error(s, "checkpoint", run_.counts.checkpoint_failures);
    }
  }
}

TxnKind draw_kind(const JournalPlan& plan, Random& rng) {
  uint64_t total = 0;
  for (uint32_t w : plan.weights) total += w;
  uint64_t pick = rng.uniform(total);
  size_t k = 0;
  while (pick >= plan.weights[k]) pick -= plan.weights[k++];
  return static_cast<TxnKind>(k);
}

void JournalBoot::run_txn(Random& rng) {
  if (++run_.counts.ops == crash_at_ops_) {
    // The crash point: power fails a little later, while others commit.
    const int64_t delay = static_cast<int64_t>(rng.uniform(run_.plan.crash_delay_max_ns + 1));
    sched_.schedule_after(Nanos(delay), [this] { end_boot(); });
  }
  const TxnKind wanted = draw_kind(run_.plan, rng);
  std::unique_ptr<pool::MetadataTxn> txn = store_->begin();
  // Staging is serialised by the store: the oracle's staged state is the
  // state this transaction stages on.
  PoolModel next = run_.oracle.staged();
  std::string what;
  Result<TxnKind> kind = stage_txn(*txn, wanted, rng, run_.plan.limits, next, what);
  if (!kind.ok() || *kind == TxnKind::read_check) {
    store_->abort(std::move(txn));
    if (kind.ok()) return void(++run_.counts.read_checks);
    const Status& s = kind.status();
    if (s.code() == Errc::no_space) return void(++run_.counts.no_space);
    return expected_error(s, "staging " + std::string(txn_kind_name(wanted)),
                          run_.counts.staging_io_errors);
  }
  commit_txn(std::move(txn), std::move(next), *kind, std::move(what));
}

void JournalBoot::commit_txn(std::unique_ptr<pool::MetadataTxn> txn, PoolModel next, TxnKind kind,
                             std::string what) {
  const uint64_t txn_id = next.transaction_id;
  const size_t index = run_.oracle.stage(std::move(next), what);
  ++run_.counts.staged;
  Result<Lsn> lsn = store_->commit(std::move(txn));
  if (!lsn.ok()) {
    const std::string during = "commit of txn " + std::to_string(txn_id) + " (" + what + ")";
    if (store_->mode() == pool::StoreMode::failed) {
      run_.oracle.failed(index);
    } else if (index + 1 == run_.oracle.staged_count()) {
      // The store kept working (e.g. reclaiming journal space failed before
      // the transaction was logged): the commit never happened. If that is
      // wrong, the next transaction's reads or the next recovery say so.
      run_.oracle.withdraw(index);
      ++run_.counts.withdrawn;
    } else {
      return run_.fail(during + " failed (" + lsn.status().to_string() +
                       ") after a later commit staged, yet the store did not fail");
    }
    return expected_error(lsn.status(), during, run_.counts.commit_failures);
  }
  const Status order = run_.oracle.acknowledge(index, *lsn);
  if (!order.ok()) return run_.fail(order.message());
  ++run_.counts.acknowledged;
  ++run_.counts.committed[static_cast<size_t>(kind)];
  std::ostringstream os;
  os << "commit txn " << txn_id << " at " << *lsn << ": " << what;
  run_.log(os.str());
}

std::string summary_line(const JournalRun& run) {
  const JournalCounts& c = run.counts;
  std::ostringstream os;
  // Two decimals, printed the same everywhere.
  auto ratio = [](uint64_t a, uint64_t b) {
    const uint64_t hundredths = b == 0 ? 0 : a * 100 / b;
    std::ostringstream r;
    r << hundredths / 100 << "." << (hundredths % 100 < 10 ? "0" : "") << hundredths % 100;
    return r.str();
  };
  os << "ops=" << c.ops << " commits=" << c.staged << " acknowledged=" << c.acknowledged
     << " commit_failures=" << c.commit_failures << " withdrawn=" << c.withdrawn
     << " read_checks=" << c.read_checks << " no_space=" << c.no_space << " boots=" << c.boots
     << " crashes=" << c.crashes << " recovery_cuts=" << c.recovery_cuts
     << " recoveries=" << c.recoveries << " prefixes=[" << c.prefixes
     << "] lost_in_flight=" << c.lost_in_flight << " checks=" << c.checks
     << " checkpoints=" << c.checkpoints << " open_failures=" << c.open_failures
     << " store_failures=" << c.store_failures << " io_errors=" << c.io_errors << " slow=" << c.slow
     << " disk_writes=" << c.disk_writes << " fua=" << c.fua_writes << " flushes=" << c.flushes
     << " journal_commits=" << c.journal_commits << " journal_writes=" << c.journal_writes
     << " journal_writes_per_commit=" << ratio(c.journal_writes, c.journal_commits)
     << " commits_per_batch=" << ratio(c.journal_commits, c.journal_batches)
     << " disk_writes_per_commit=" << ratio(c.disk_writes + c.fua_writes, c.acknowledged)
     << " kinds=[";
  for (size_t k = 0; k < kTxnKindCount; ++k) {
    os << (k ? " " : "") << txn_kind_name(static_cast<TxnKind>(k)) << "=" << c.committed[k];
  }
  os << "] " << plan_summary(run.plan);
  return os.str();
}

void observe_trace(JournalRun& run, const sim::TraceEvent& ev) {
  if (ev.kind != sim::TraceKind::complete) return;
  JournalCounts& c = run.counts;
  if (ev.status != Errc::ok) ++c.io_errors;
  if (ev.fault == sim::FaultKind::slow) ++c.slow;
  if (ev.op == IoOp::write) ++(ev.fua ? c.fua_writes : c.disk_writes);
  if (ev.op == IoOp::flush) ++c.flushes;
}

// The kind and crash point of the next boot.
BootKind next_boot(JournalRun& run, std::optional<uint64_t>& crash_at) {
  crash_at.reset();
  if (run.closed_cleanly) return BootKind::verify_clean;
  if (run.counts.recovery_cuts < kMaxRecoveryCuts &&
      run.crash_rng.chance(run.plan.recovery_cut_probability)) {
    return BootKind::recovery_cut;
  }
  for (uint64_t at : run.plan.crash_points) {
    if (at > run.counts.ops) {
      crash_at = at;
      break;
    }
  }
  return BootKind::work;
}

// Runs boots until the clean close has been verified or the run fails.
void run_boots(JournalRun& run) {
  bool formatted = false;
  while (run.failure.empty()) {
    if (run.counts.boots >= kMaxBoots) return run.fail("too many boots (open keeps failing?)");
    ++run.counts.boots;
    std::optional<uint64_t> crash_at;
    const BootKind kind = formatted ? next_boot(run, crash_at) : BootKind::format;
    sim::RunLimits limits;
    if (kind == BootKind::recovery_cut) {
      ++run.counts.recovery_cuts;
      limits.max_time = Nanos(static_cast<int64_t>(
          run.crash_rng.uniform(static_cast<uint64_t>(run.last_open_ns) * 3 / 2 + 1)));
    }
    JournalBoot boot(run, kind, crash_at);
    const RunOutcome out = boot.execute(limits);
    if (!run.failure.empty()) return;
    if (kind == BootKind::format) formatted = true;
    if (kind == BootKind::verify_clean) {
      if (!run.closed_cleanly) return run.fail("the clean reopen did not close");
      return;
    }
    if (out != RunOutcome::idle && out != RunOutcome::stopped && out != RunOutcome::time_limit) {
      return run.fail("boot ended " + std::string(run_outcome_name(out)));
    }
    // A boot that closed cleanly still loses power: what close() wrote
    // must already be durable.
    boot.crash();
  }
}

}  // namespace

ScenarioResult run_journal_scenario(const ScenarioOptions& options) {
  ScenarioResult result;
  bool skip_durability = false;
  for (const std::string& bug : options.bugs) {
    if (bug != "journal-no-durability") {
      result.failure =
          "unknown bug '" + bug + "' for scenario journal (known: journal-no-durability)";
      return result;
    }
    skip_durability = true;
  }
  Random root(options.seed);
  Random plan_rng = root.fork();
  JournalRun run(options, root);
  run.total_ops =
      std::max<uint64_t>(options.ops != 0 ? options.ops : kJournalScenarioDefaultOps, 2);
  run.plan = make_plan(plan_rng, run.total_ops, skip_durability);
  const uint64_t data_offset =
      (run.plan.metadata_blocks * kMetadataBlockBytes + run.plan.data_block_bytes - 1) /
      run.plan.data_block_bytes * run.plan.data_block_bytes;
  const uint64_t device_bytes = data_offset + run.plan.data_blocks * run.plan.data_block_bytes;
  run.media =
      std::make_unique<sim::DiskMedia>(run.plan.sector_bytes, device_bytes / run.plan.sector_bytes);
  run.trace = std::make_unique<sim::IoTrace>(sim::TraceOptions{.keep_events = false});
  run.trace->set_observer([&run](const sim::TraceEvent& ev) {
    if (run.options.verbose) run.log(sim::format_event(ev, /*with_sector_hashes=*/false));
    observe_trace(run, ev);
  });
  run.log("journal scenario seed " + std::to_string(options.seed) + ": " + plan_summary(run.plan));
  run_boots(run);

  result.passed = run.failure.empty();
  result.failure = run.failure;
  result.summary = summary_line(run);
  run.digest.add_u64(run.trace->digest());
  run.digest.add_u64(run.counts.acknowledged);
  run.digest.add_u64(run.counts.ops);
  run.digest.add_u64(run.counts.crashes);
  result.digest = run.digest.value();
  run.log("result: " + std::string(result.passed ? "pass " : "FAIL ") + result.summary);
  return result;
}

}  // namespace thinp::scenarios
