#include "tools/bench_isolation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <vector>

#include "engine/base/assert.h"
#include "engine/base/random.h"
#include "engine/pool/pool.h"
#include "sim/scheduler.h"
#include "sim/sim_disk.h"
#include "sim/sim_disk_media.h"
#include "sim/trace.h"

namespace thinp::tools {
namespace {

using pool::Pool;
using std::chrono::microseconds;

constexpr uint64_t kBlockBytes = 64 * 1024;
constexpr uint64_t kPageBytes = 4096;  // B's and A's IO size
constexpr uint64_t kPagesPerBlock = kBlockBytes / kPageBytes;
constexpr uint64_t kMetadataBytes = uint64_t(32) << 20;
const ThinId kThinA(1), kThinB(2);

// Where one task's device time went: the sums over its IOs.
struct DeviceTime {
  Nanos queued{0};  // submitted, waiting for a channel
  Nanos total{0};   // submitted to completed
};

// A device that serves at most `channels` requests at once, FIFO, in front
// of a SimDisk (which by itself would serve any number in parallel), and
// charges each request's time to the task that submitted it.
class ChannelDevice final : public BlockDevice {
 public:
  ChannelDevice(sim::Scheduler& sched, BlockDevice& inner, uint32_t channels)
      : BlockDevice(sched), sched_(sched), inner_(inner), channels_(channels) {
    TP_ASSERT(channels > 0);
  }
  ~ChannelDevice() override = default;

  void submit(IoRequest* req) override {
    auto p = std::make_unique<Pending>();
    p->outer = req;
    p->task = sched_.current_task();
    p->submitted = sched_.now();
    Pending* raw = p.get();
    pending_[raw] = std::move(p);
    if (busy_ < channels_) {
      start(raw);
    } else {
      waiting_.push_back(raw);
    }
  }
  uint64_t size_bytes() const override { return inner_.size_bytes(); }
  uint32_t logical_sector_bytes() const override { return inner_.logical_sector_bytes(); }
  std::string name() const override { return "channels(" + inner_.name() + ")"; }

  // Time charged to `task` so far (all of its IOs that completed).
  DeviceTime charged(TaskId task) const {
    auto it = charged_.find(task);
    return it == charged_.end() ? DeviceTime{} : it->second;
  }

 private:
  struct Pending {
    IoRequest inner;
    IoRequest* outer = nullptr;
    TaskId task = kNoTask;
    Nanos submitted{0}, started{0};
  };

  void start(Pending* p) {
    ++busy_;
    p->started = sched_.now();
    p->inner.op = p->outer->op;
    p->inner.fua = p->outer->fua;
    p->inner.offset_bytes = p->outer->offset_bytes;
    p->inner.length_bytes = p->outer->length_bytes;
    p->inner.data = p->outer->data;
    p->inner.on_complete = [this, p](Status s) { finish(p, std::move(s)); };
    inner_.submit(&p->inner);
  }

  // Scheduler context (the SimDisk's completion event).
  void finish(Pending* p, Status s) {
    TP_ASSERT(busy_ > 0);
    --busy_;
    DeviceTime& t = charged_[p->task];
    t.queued += p->started - p->submitted;
    t.total += sched_.now() - p->submitted;
    IoRequest* outer = p->outer;
    // The lambda running now lives in p->inner: keep it until the next
    // completion rather than destroy it under its own feet.
    auto node = pending_.find(p);
    TP_ASSERT(node != pending_.end());
    retired_ = std::move(node->second);
    pending_.erase(node);
    if (!waiting_.empty()) {
      Pending* next = waiting_.front();
      waiting_.pop_front();
      start(next);
    }
    outer->on_complete(std::move(s));
  }

  sim::Scheduler& sched_;
  BlockDevice& inner_;
  uint32_t channels_;
  uint32_t busy_ = 0;
  std::deque<Pending*> waiting_;
  // Keyed by address only to find the entry again; never iterated.
  std::map<Pending*, std::unique_ptr<Pending>> pending_;
  std::unique_ptr<Pending> retired_;  // the last one finished
  std::map<TaskId, DeviceTime> charged_;
};

// One pool on one simulated device.
struct World {
  World(const IsolationBenchOptions& o, uint64_t data_blocks)
      : sched(o.seed),
        media(512, (kMetadataBytes + data_blocks * kBlockBytes) / 512),
        trace(sim::TraceOptions{}) {
    sim::SimDiskOptions d;
    d.name = "bench-disk";
    d.latency.read_min = microseconds(80);
    d.latency.read_max = microseconds(120);
    d.latency.write_min = microseconds(80);
    d.latency.write_max = microseconds(120);
    d.latency.flush_min = microseconds(200);
    d.latency.flush_max = microseconds(400);
    d.latency.tail_probability = 0;
    disk = std::make_unique<sim::SimDisk>(sched, media, trace, d, Random(o.seed * 7919 + 1));
    device = std::make_unique<ChannelDevice>(sched, *disk, o.channels);
  }
  ~World() {
    pool.reset();
    sched.kill_all_tasks();
  }

  sim::Scheduler sched;
  sim::DiskMedia media;
  sim::IoTrace trace;
  std::unique_ptr<sim::SimDisk> disk;
  std::unique_ptr<ChannelDevice> device;
  std::unique_ptr<Pool> pool;
};

// B's page contents: every byte names (task, page, version), so a read
// checks that B sees exactly its own last write (DESIGN.md invariant 3).
void fill_page(std::byte* p, uint32_t task, uint64_t page, uint32_t version) {
  std::memset(p, int((task * 37 + page * 11 + version * 101 + 1) & 0xff), kPageBytes);
}

double us(Nanos n) { return double(n.count()) / 1000.0; }

// The p-th quantile (0 < p <= 1) of `v`, nearest rank.
Nanos quantile(std::vector<Nanos> v, double p) {
  if (v.empty()) return Nanos(0);
  std::sort(v.begin(), v.end());
  size_t rank = size_t(p * double(v.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

struct BOp {
  Nanos latency{0}, queued{0}, non_io{0};
};

// B's task `k`: setup already provisioned its blocks with version 0.
Status run_b_task(World& w, const IsolationBenchOptions& o, uint32_t k, std::vector<BOp>& ops) {
  Random rng(o.seed * 1'000'003 + k);
  const uint64_t pages = uint64_t(o.b_blocks_per_task) * kPagesPerBlock;
  const uint64_t first_page = uint64_t(k) * pages;
  std::vector<uint32_t> version(pages, 0);
  AlignedBuffer buf(kPageBytes), want(kPageBytes);
  const TaskId me = w.sched.current_task();
  for (uint32_t i = 0; i < o.b_ops_per_task; ++i) {
    const uint64_t page = rng.uniform(pages);
    const bool write = rng.uniform(2) == 0;
    const uint64_t offset = (first_page + page) * kPageBytes;
    const DeviceTime before = w.device->charged(me);
    const Nanos t0 = w.sched.now();
    Status s;
    if (write) {
      fill_page(buf.data(), k, first_page + page, ++version[page]);
      s = w.pool->write(kThinB, offset, buf.span());
    } else {
      s = w.pool->read(kThinB, offset, buf.span());
    }
    const Nanos latency = w.sched.now() - t0;
    if (!s.ok()) return s.with_context(fmt::format("thin B task {} op {}", k, i));
    if (!write) {
      fill_page(want.data(), k, first_page + page, version[page]);
      if (std::memcmp(buf.data(), want.data(), kPageBytes) != 0) {
        return Status(Errc::corruption, fmt::format("thin B task {} read page {} wrong", k, page));
      }
    }
    const DeviceTime after = w.device->charged(me);
    const Nanos io = after.total - before.total;
    ops.push_back(BOp{latency, after.queued - before.queued, latency - io});
  }
  return ok_status();
}

// A's task `k`: provisions block after block of its range until B is done.
Status run_a_task(World& w, const IsolationBenchOptions& o, uint32_t k, const uint32_t& b_running,
                  IsolationRunFigures& f) {
  AlignedBuffer buf(kPageBytes);
  std::memset(buf.data(), int(0xa0 + k), kPageBytes);
  const uint64_t first_block = uint64_t(k) * o.a_max_writes_per_task;
  for (uint32_t n = 0; n < o.a_max_writes_per_task && b_running > 0; ++n) {
    TP_RETURN_IF_ERROR(w.pool->write(kThinA, (first_block + n) * kBlockBytes, buf.span()));
    ++f.a_writes;
    if ((n + 1) % o.a_flush_every == 0) {
      TP_RETURN_IF_ERROR(w.pool->flush());
      ++f.a_flushes;
    }
  }
  return ok_status();
}

Status set_up(World& w, const IsolationBenchOptions& o) {
  pool::FormatOptions f;
  f.metadata_bytes = kMetadataBytes;
  f.data_block_bytes = kBlockBytes;
  TP_RETURN_IF_ERROR(Pool::format(w.sched, *w.device, nullptr, f));
  TP_ASSIGN_OR_RETURN(w.pool, Pool::open(w.sched, *w.device, nullptr, pool::PoolOptions{}));
  const uint64_t b_blocks = uint64_t(o.b_tasks) * o.b_blocks_per_task;
  TP_RETURN_IF_ERROR(
      w.pool->create_thin(kThinA, uint64_t(o.a_tasks) * o.a_max_writes_per_task * kBlockBytes));
  TP_RETURN_IF_ERROR(w.pool->create_thin(kThinB, b_blocks * kBlockBytes));
  AlignedBuffer block(kBlockBytes);
  for (uint64_t b = 0; b < b_blocks; ++b) {
    const uint32_t task = uint32_t(b / o.b_blocks_per_task);
    for (uint64_t p = 0; p < kPagesPerBlock; ++p) {
      fill_page(block.data() + p * kPageBytes, task, b * kPagesPerBlock + p, 0);
    }
    TP_RETURN_IF_ERROR(w.pool->write(kThinB, b * kBlockBytes, block.span()));
  }
  return w.pool->flush();
}

Result<IsolationRunFigures> run_once(const IsolationBenchOptions& o, bool storm) {
  const uint64_t data_blocks = uint64_t(o.b_tasks) * o.b_blocks_per_task +
                               uint64_t(o.a_tasks) * o.a_max_writes_per_task + 64;
  World w(o, data_blocks);
  IsolationRunFigures f;
  Status first_error;
  auto note = [&](const Status& s) {
    if (!s.ok() && first_error.ok()) first_error = s;
  };
  std::vector<std::vector<BOp>> b_ops(o.b_tasks);
  uint32_t b_running = 0;
  Nanos start{0}, end{0};
  w.sched.spawn("bench", [&] {
    Status s = set_up(w, o);
    if (!s.ok()) return note(s.with_context("setting up"));
    start = w.sched.now();
    b_running = o.b_tasks;
    for (uint32_t k = 0; k < o.b_tasks; ++k) {
      w.sched.spawn(fmt::format("B{}", k), [&, k] {
        note(run_b_task(w, o, k, b_ops[k]));
        if (--b_running == 0) end = w.sched.now();
      });
    }
    for (uint32_t k = 0; storm && k < o.a_tasks; ++k) {
      w.sched.spawn(fmt::format("A{}", k), [&, k] { note(run_a_task(w, o, k, b_running, f)); });
    }
  });
  const sim::RunOutcome outcome = w.sched.run();
  if (outcome != sim::RunOutcome::idle) {
    return Status(Errc::aborted, "isolation bench did not finish: " + w.sched.deadlock_report() +
                                     w.sched.failure());
  }
  if (!first_error.ok()) return first_error;

  std::vector<Nanos> latency, queued;
  for (const std::vector<BOp>& ops : b_ops) {
    for (const BOp& op : ops) {
      latency.push_back(op.latency);
      queued.push_back(op.queued);
      f.b_non_io_max_us = std::max(f.b_non_io_max_us, us(op.non_io));
      f.b_non_io_total_us += us(op.non_io);
    }
  }
  f.b_ops = latency.size();
  f.b_p50_us = us(quantile(latency, 0.50));
  f.b_p99_us = us(quantile(latency, 0.99));
  f.b_max_us = us(quantile(latency, 1.0));
  f.b_queue_p50_us = us(quantile(queued, 0.50));
  f.b_queue_p99_us = us(quantile(queued, 0.99));
  f.seconds = double((end - start).count()) / 1e9;
  return f;
}

std::string figures_json(const IsolationRunFigures& f) {
  return fmt::format(
      "{{\"b_ops\":{},\"b_p50_us\":{:.1f},\"b_p99_us\":{:.1f},\"b_max_us\":{:.1f},"
      "\"b_queue_p50_us\":{:.1f},\"b_queue_p99_us\":{:.1f},\"b_non_io_max_us\":{:.1f},"
      "\"b_non_io_total_us\":{:.1f},\"a_writes\":{},\"a_flushes\":{},\"seconds\":{:.6f}}}",
      f.b_ops, f.b_p50_us, f.b_p99_us, f.b_max_us, f.b_queue_p50_us, f.b_queue_p99_us,
      f.b_non_io_max_us, f.b_non_io_total_us, f.a_writes, f.a_flushes, f.seconds);
}

std::string figures_text(const char* label, const IsolationRunFigures& f) {
  return fmt::format(
      "{:<11} B ops {}: p50 {:.1f} us, p99 {:.1f} us, max {:.1f} us; device queue p50 {:.1f} "
      "p99 {:.1f} us; outside IO max {:.1f} us; A writes {}, flushes {}; {:.3f} s virtual",
      label, f.b_ops, f.b_p50_us, f.b_p99_us, f.b_max_us, f.b_queue_p50_us, f.b_queue_p99_us,
      f.b_non_io_max_us, f.a_writes, f.a_flushes, f.seconds);
}

}  // namespace

Result<IsolationBenchReport> run_isolation_bench(const IsolationBenchOptions& o) {
  if (o.a_tasks == 0 || o.a_flush_every == 0 || o.a_max_writes_per_task == 0 || o.b_tasks == 0 ||
      o.b_ops_per_task == 0 || o.b_blocks_per_task == 0 || o.channels == 0) {
    return Status(Errc::invalid_argument, "isolation bench: every count must be > 0");
  }
  if (uint64_t(o.a_tasks) * o.a_max_writes_per_task > (uint64_t(1) << 20)) {
    return Status(Errc::invalid_argument,
                  "isolation bench: the storm may write at most 2^20 blocks");
  }
  IsolationBenchReport r;
  r.options = o;
  TP_ASSIGN_OR_RETURN(r.alone, run_once(o, false));
  TP_ASSIGN_OR_RETURN(r.storm, run_once(o, true));
  r.p99_ratio = r.alone.b_p99_us > 0 ? r.storm.b_p99_us / r.alone.b_p99_us : 0;
  r.p50_ratio = r.alone.b_p50_us > 0 ? r.storm.b_p50_us / r.alone.b_p50_us : 0;
  return r;
}

std::string format_isolation_bench(const IsolationBenchReport& r, bool json) {
  if (json) {
    return fmt::format(
        "{{\"seed\":{},\"channels\":{},\"a_tasks\":{},\"a_flush_every\":{},\"b_tasks\":{},"
        "\"b_ops_per_task\":{},\"alone\":{},\"storm\":{},\"p99_ratio\":{:.3f},\"p50_ratio\":{:.3f}}"
        "}",
        r.options.seed, r.options.channels, r.options.a_tasks, r.options.a_flush_every,
        r.options.b_tasks, r.options.b_ops_per_task, figures_json(r.alone), figures_json(r.storm),
        r.p99_ratio, r.p50_ratio);
  }
  return fmt::format(
      "isolation seed={} channels={} A: {} tasks, flush every {}; B: {} tasks x {} ops\n{}\n{}\n"
      "B p99 with storm / alone: {:.2f} (p50: {:.2f})",
      r.options.seed, r.options.channels, r.options.a_tasks, r.options.a_flush_every,
      r.options.b_tasks, r.options.b_ops_per_task, figures_text("alone:", r.alone),
      figures_text("with storm:", r.storm), r.p99_ratio, r.p50_ratio);
}

int run_isolation_bench_command(const IsolationBenchOptions& options, bool json) {
  auto report = run_isolation_bench(options);
  if (!report.ok()) {
    std::cerr << "thinp: error: " << report.status().message() << "\n";
    return report.status().code() == Errc::invalid_argument ? 2 : 1;
  }
  std::cout << format_isolation_bench(*report, json) << "\n";
  return 0;
}

}  // namespace thinp::tools
