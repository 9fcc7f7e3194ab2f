#include "tools/bench_raw.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <memory>

#include "engine/io/block_device.h"
#include "engine/real/reactor.h"
#include "engine/real/real_device.h"
#include "tools/json.h"

namespace thinp::tools {
namespace {

using real::Reactor;
using real::ReactorOutcome;

enum class Workload : uint8_t { randread, randwrite, read, write };

Result<Workload> parse_workload(const std::string& name) {
  if (name == "randread") return Workload::randread;
  if (name == "randwrite") return Workload::randwrite;
  if (name == "read") return Workload::read;
  if (name == "write") return Workload::write;
  return Status(Errc::invalid_argument,
                "unknown workload '" + name + "' (expected randread, randwrite, read or write)");
}

bool is_write(Workload w) { return w == Workload::randwrite || w == Workload::write; }
bool is_random(Workload w) { return w == Workload::randread || w == Workload::randwrite; }

// Latencies in nanoseconds, in log-linear buckets: exact below 64, then 32
// buckets per power of two (resolution 1/32, about 3%). Fixed size: no
// allocation while the benchmark runs.
class LatencyHistogram {
 public:
  void record(uint64_t ns) {
    ++counts_[bucket_of(ns)];
    ++count_;
    sum_ns_ += ns;
    max_ns_ = std::max(max_ns_, ns);
  }
  uint64_t count() const { return count_; }
  double mean_ns() const { return count_ == 0 ? 0 : static_cast<double>(sum_ns_) / count_; }
  uint64_t max_ns() const { return max_ns_; }

  // The smallest recorded latency such that a fraction `p` of all samples
  // are at or below it, to the histogram's resolution (a bucket's midpoint).
  double percentile_ns(double p) const {
    if (count_ == 0) return 0;
    const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(p * count_)));
    uint64_t seen = 0;
    for (size_t b = 0; b < kBuckets; ++b) {
      seen += counts_[b];
      if (seen >= rank) {
        const double mid =
            (static_cast<double>(lower_bound(b)) + static_cast<double>(lower_bound(b + 1))) / 2;
        return std::min(mid, static_cast<double>(max_ns_));
      }
    }
    return static_cast<double>(max_ns_);
  }

 private:
  static constexpr size_t kLinear = 64;
  static constexpr size_t kSubBuckets = 32;
  static constexpr size_t kBuckets = kLinear + (64 - 6) * kSubBuckets;

  static size_t bucket_of(uint64_t v) {
    if (v < kLinear) return v;
    const int msb = 63 - std::countl_zero(v);  // >= 6
    const int shift = msb - 5;
    return kLinear + static_cast<size_t>(msb - 6) * kSubBuckets + ((v >> shift) - kSubBuckets);
  }
  static uint64_t lower_bound(size_t b) {
    if (b < kLinear) return b;
    if (b >= kBuckets) return UINT64_MAX;
    const size_t octave = (b - kLinear) / kSubBuckets;
    const uint64_t top = kSubBuckets + (b - kLinear) % kSubBuckets;
    return top << (octave + 1);
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
  uint64_t max_ns_ = 0;
};

// What the benchmark tasks share. All of them run on the reactor's thread,
// one at a time, so plain fields suffice.
struct BenchState {
  BlockDevice* device = nullptr;
  Workload workload = Workload::randread;
  uint64_t block_bytes = 0;
  uint64_t blocks = 0;  // device size in block_bytes units
  Nanos deadline{0};
  uint64_t next_block = 0;  // sequential workloads' shared cursor
  Nanos last_completion{0};
  Status first_error;
  bool stop = false;
  LatencyHistogram latency;
};

uint64_t next_offset(BenchState& s, Reactor& r) {
  if (is_random(s.workload)) return r.random().uniform(s.blocks) * s.block_bytes;
  const uint64_t block = s.next_block;
  s.next_block = (s.next_block + 1) % s.blocks;
  return block * s.block_bytes;
}

// One of queue_depth tasks: issue one IO at a time until the deadline.
void bench_task(Reactor& r, BenchState& s) {
  AlignedBuffer buffer(s.block_bytes);
  if (is_write(s.workload)) {
    // Incompressible data, so that no layer below can cheat on zeroes.
    Random fill = r.random().fork();
    auto* words = reinterpret_cast<uint64_t*>(buffer.data());
    for (size_t i = 0; i < s.block_bytes / sizeof(uint64_t); ++i) words[i] = fill.next_u64();
  }
  IoRequest req;
  req.op = is_write(s.workload) ? IoOp::write : IoOp::read;
  req.length_bytes = s.block_bytes;
  req.data = buffer.data();
  Nanos now = r.now();
  while (!s.stop && now < s.deadline) {
    req.offset_bytes = next_offset(s, r);
    const Nanos submitted = now;
    Status status = s.device->submit_and_wait(req);
    now = r.now();
    if (!status.ok()) {
      if (s.first_error.ok()) s.first_error = std::move(status);
      s.stop = true;
      return;
    }
    s.latency.record(static_cast<uint64_t>((now - submitted).count()));
    s.last_completion = std::max(s.last_completion, now);
  }
}

Status check_options(const RawBenchOptions& o) {
  if (o.path.empty()) return Status(Errc::invalid_argument, "no device path given");
  if (o.queue_depth == 0 || o.queue_depth > 4096) {
    return Status(Errc::invalid_argument,
                  "queue depth " + std::to_string(o.queue_depth) + " is not in 1..4096");
  }
  if (!(o.seconds > 0 && o.seconds <= 86400)) {
    return Status(Errc::invalid_argument,
                  "duration " + std::to_string(o.seconds) + " s is not in (0, 86400]");
  }
  return ok_status();
}

Status check_block_size(const RawBenchOptions& o, const BlockDevice& dev) {
  const uint64_t sector = dev.logical_sector_bytes();
  if (o.block_bytes == 0 || o.block_bytes % sector != 0) {
    return Status(Errc::invalid_argument, "block size " + std::to_string(o.block_bytes) +
                                              " is not a positive multiple of the " +
                                              std::to_string(sector) + "-byte sector size of " +
                                              dev.name());
  }
  if (o.block_bytes > dev.size_bytes() || o.block_bytes > (uint64_t{1} << 30)) {
    return Status(Errc::invalid_argument,
                  "block size " + std::to_string(o.block_bytes) + " is larger than " + dev.name() +
                      " (" + std::to_string(dev.size_bytes()) + " bytes) or 1 GiB");
  }
  return ok_status();
}

RawBenchReport make_report(const RawBenchOptions& o, const BlockDevice& dev, const BenchState& s,
                           bool uring, Nanos elapsed) {
  RawBenchReport rep;
  rep.path = o.path;
  rep.workload = o.workload;
  rep.io_engine = uring ? "io_uring" : "pread";
  rep.block_bytes = o.block_bytes;
  rep.queue_depth = o.queue_depth;
  rep.device_bytes = dev.size_bytes();
  rep.seconds = std::chrono::duration<double>(elapsed).count();
  rep.ios = s.latency.count();
  if (rep.seconds > 0) {
    rep.iops = static_cast<double>(rep.ios) / rep.seconds;
    rep.mib_per_s = rep.iops * static_cast<double>(o.block_bytes) / (1024.0 * 1024.0);
  }
  rep.lat_us_mean = s.latency.mean_ns() / 1000;
  rep.lat_us_p50 = s.latency.percentile_ns(0.50) / 1000;
  rep.lat_us_p99 = s.latency.percentile_ns(0.99) / 1000;
  rep.lat_us_p999 = s.latency.percentile_ns(0.999) / 1000;
  rep.lat_us_max = static_cast<double>(s.latency.max_ns()) / 1000;
  return rep;
}

}  // namespace

Result<RawBenchReport> run_raw_bench(const RawBenchOptions& options) {
  TP_ASSIGN_OR_RETURN(const Workload workload, parse_workload(options.workload));
  TP_RETURN_IF_ERROR(check_options(options));
  // A CQ (twice the SQ) that holds every request of the queue depth.
  if (options.submit_batch == 0)
    return Status(Errc::invalid_argument, "submit batch must be at least 1");
  Reactor reactor(real::ReactorOptions{
      .seed = options.seed,
      .ring_entries = std::bit_ceil(std::max<uint32_t>(options.queue_depth, 8)),
      .submit_batch = options.submit_batch,
      .use_uring = options.use_uring});
  const real::OpenOptions open{.read_only = !is_write(workload), .use_uring = options.use_uring};
  TP_ASSIGN_OR_RETURN(std::unique_ptr<BlockDevice> device,
                      real::open_real_device(reactor, options.path, open));
  TP_RETURN_IF_ERROR(check_block_size(options, *device));
  const bool uring = dynamic_cast<const real::RealDevice&>(*device).uses_uring();

  BenchState state;
  state.device = device.get();
  state.workload = workload;
  state.block_bytes = options.block_bytes;
  state.blocks = device->size_bytes() / options.block_bytes;
  const Nanos start = reactor.now();
  state.deadline =
      start + std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(options.seconds));
  for (uint32_t i = 0; i < options.queue_depth; ++i) {
    reactor.spawn("bench" + std::to_string(i), [&reactor, &state] { bench_task(reactor, state); });
  }
  const ReactorOutcome outcome = reactor.run();
  if (outcome != ReactorOutcome::idle) {
    reactor.kill_all_tasks();
    return Status(
        Errc::aborted,
        std::string("benchmark ended with ") + real::reactor_outcome_name(outcome) + ": " +
            (outcome == ReactorOutcome::deadlock ? reactor.deadlock_report() : reactor.failure()));
  }
  if (!state.first_error.ok()) return state.first_error.with_context("benchmark stopped");
  return make_report(options, *device, state, uring, state.last_completion - start);
}

std::string format_raw_bench(const RawBenchReport& r, bool json) {
  char buf[1024];
  if (json) {
    std::snprintf(
        buf, sizeof buf,
        "\"io_engine\":\"%s\",\"bs\":%llu,\"qd\":%u,\"device_bytes\":%llu,\"seconds\":%.3f,"
        "\"ios\":%llu,\"iops\":%.1f,\"mib_per_s\":%.2f,\"lat_us_mean\":%.2f,\"lat_us_p50\":%.2f,"
        "\"lat_us_p99\":%.2f,\"lat_us_p999\":%.2f,\"lat_us_max\":%.2f}",
        r.io_engine.c_str(), static_cast<unsigned long long>(r.block_bytes), r.queue_depth,
        static_cast<unsigned long long>(r.device_bytes), r.seconds,
        static_cast<unsigned long long>(r.ios), r.iops, r.mib_per_s, r.lat_us_mean, r.lat_us_p50,
        r.lat_us_p99, r.lat_us_p999, r.lat_us_max);
    return "{\"path\":" + json_string(r.path) + ",\"workload\":" + json_string(r.workload) + "," +
           buf;
  }
  std::snprintf(
      buf, sizeof buf,
      " bs=%llu qd=%u %s %.1f s: %.0f IOPS, %.1f MiB/s, latency us p50 %.1f p99 %.1f p99.9 %.1f "
      "max %.1f",
      static_cast<unsigned long long>(r.block_bytes), r.queue_depth, r.io_engine.c_str(), r.seconds,
      r.iops, r.mib_per_s, r.lat_us_p50, r.lat_us_p99, r.lat_us_p999, r.lat_us_max);
  return r.workload + " " + r.path + buf;
}

}  // namespace thinp::tools
