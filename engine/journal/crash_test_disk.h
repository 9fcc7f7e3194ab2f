// CrashTestDisk: a small in-memory BlockDevice for the journal and cache unit
// tests, with a volatile write cache, FUA, FLUSH and crashes.
//
// Fault model (the device contract of block_device.h, nothing more):
//   - A write completes after a random latency (so completions reorder) into
//     the volatile cache: reads see it at once, a crash may lose it.
//   - A write with FUA is durable when it completes.
//   - A FLUSH makes durable every write that completed before the FLUSH was
//     submitted.
//   - crash_image() builds what the media holds after a crash now: the
//     durable state, plus each completed-but-unflushed write and each write
//     still in flight kept, dropped, or (random mode) torn at sector
//     granularity (a prefix of its sectors, or a random subset), in
//     completion order.
//   - Two overlapping writes in flight at once break the engine's side of the
//     contract: the disk asserts.
//   - fail_writes makes the next N writes complete with io_error.
//
// It is test code: it takes a callback to schedule completions (the
// simulator's schedule_after) so that it needs nothing from sim/. The
// simulator's full disk model is sim/sim_disk.h.
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/base/random.h"
#include "engine/io/block_device.h"

namespace thinp::testing {

class CrashTestDisk final : public BlockDevice {
 public:
  using ScheduleAfter = std::function<void(Nanos, std::function<void()>)>;
  enum class CrashMode { drop_unflushed, keep_unflushed, random };

  struct IoRecord {
    IoOp op;
    uint64_t offset_bytes;
    uint64_t length_bytes;
    bool fua;
  };

  CrashTestDisk(Runtime& rt, ScheduleAfter schedule, uint64_t size_bytes, uint64_t seed,
                std::vector<std::byte> image = {})
      : BlockDevice(rt), schedule_(std::move(schedule)), random_(seed) {
    if (image.empty()) image.assign(size_bytes, std::byte{0});
    TP_ASSERT_EQ(image.size(), size_bytes);
    flushed_ = image;
    current_ = std::move(image);
  }

  Nanos min_latency{std::chrono::microseconds(20)};
  Nanos max_latency{std::chrono::microseconds(100)};
  uint64_t fail_writes = 0;
  std::vector<IoRecord> trace;

  uint64_t size_bytes() const override { return current_.size(); }
  uint32_t logical_sector_bytes() const override { return 512; }
  std::string name() const override { return "crash-test-disk"; }

  void submit(IoRequest* req) override {
    trace.push_back(IoRecord{req->op, req->offset_bytes, req->length_bytes, req->fua});
    Status s = validate(*req);
    const Nanos delay = latency();
    if (!s.ok()) {
      schedule_(delay, [req, s] { req->on_complete(s); });
      return;
    }
    switch (req->op) {
      case IoOp::read:
        schedule_(delay, [this, req] {
          std::memcpy(req->data, current_.data() + req->offset_bytes, req->length_bytes);
          req->on_complete(ok_status());
        });
        return;
      case IoOp::write: {
        for (const auto& [id, w] : in_flight_) {
          TP_ASSERT_MSG(w->offset_bytes + w->length_bytes <= req->offset_bytes ||
                            req->offset_bytes + req->length_bytes <= w->offset_bytes,
                        "overlapping writes in flight");
        }
        const uint64_t id = next_id_++;
        in_flight_[id] = req;
        schedule_(delay, [this, req, id] { complete_write(req, id); });
        return;
      }
      case IoOp::flush: {
        const uint64_t upto = next_done_;
        schedule_(delay, [this, req, upto] {
          apply_flushed(upto);
          req->on_complete(ok_status());
        });
        return;
      }
      case IoOp::discard:
        schedule_(delay, [req] { req->on_complete(ok_status()); });
        return;
    }
  }

  // What the media would hold after a crash now. Does not change the disk.
  std::vector<std::byte> crash_image(CrashMode mode, Random& rng) const {
    std::vector<std::byte> image = flushed_;
    auto land = [&](uint64_t offset, const std::byte* data, uint64_t length, bool forced) {
      const bool keep = forced || mode == CrashMode::keep_unflushed ||
                        (mode == CrashMode::random && rng.chance(0.5));
      if (!keep) return;
      // A torn write keeps either a prefix of its sectors (a device writing
      // in order) or a random subset of them.
      const bool tear = !forced && mode == CrashMode::random && rng.chance(0.3);
      const bool prefix = tear && rng.chance(0.5);
      const uint64_t cut = prefix ? rng.uniform(length / 512) * 512 : length;
      for (uint64_t s = 0; s < length; s += 512) {
        if (prefix ? s >= cut : (tear && rng.chance(0.5))) continue;
        std::memcpy(image.data() + offset + s, data + s, 512);
      }
    };
    for (const Completed& c : log_) land(c.offset, c.data.data(), c.data.size(), c.fua);
    for (const auto& [id, req] : in_flight_)
      land(req->offset_bytes, req->data, req->length_bytes, false);
    return image;
  }

  // Bytes [offset, offset + length) as a crash that drops every non-durable
  // write would leave them.
  std::vector<std::byte> durable_bytes(uint64_t offset, uint64_t length) const {
    TP_ASSERT_LE(offset + length, flushed_.size());
    std::vector<std::byte> out(flushed_.begin() + offset, flushed_.begin() + offset + length);
    for (const Completed& c : log_) {
      if (!c.fua) continue;
      const uint64_t lo = std::max(offset, c.offset);
      const uint64_t hi = std::min(offset + length, c.offset + c.data.size());
      if (lo < hi)
        std::memcpy(out.data() + (lo - offset), c.data.data() + (lo - c.offset), hi - lo);
    }
    return out;
  }

  // Counts of trace entries in [begin, end) bytes.
  uint64_t count(IoOp op, uint64_t begin = 0, uint64_t end = UINT64_MAX) const {
    return std::count_if(trace.begin(), trace.end(), [&](const IoRecord& r) {
      return r.op == op && (op == IoOp::flush || (r.offset_bytes >= begin && r.offset_bytes < end));
    });
  }

  std::span<const std::byte> current() const { return current_; }

 private:
  struct Completed {
    uint64_t done_seq;
    uint64_t offset;
    std::vector<std::byte> data;
    bool fua;
  };

  Nanos latency() { return Nanos(random_.range(min_latency.count(), max_latency.count())); }

  void complete_write(IoRequest* req, uint64_t id) {
    in_flight_.erase(id);
    if (fail_writes > 0) {
      --fail_writes;
      req->on_complete(Status(Errc::io_error, "injected write error"));
      return;
    }
    std::memcpy(current_.data() + req->offset_bytes, req->data, req->length_bytes);
    log_.push_back(Completed{next_done_++, req->offset_bytes,
                             std::vector<std::byte>(req->data, req->data + req->length_bytes),
                             req->fua});
    req->on_complete(ok_status());
  }

  // Writes that completed before a FLUSH's submission become durable, and a
  // FUA write is durable already; both move into the flushed image in
  // completion order once nothing older is still volatile.
  void apply_flushed(uint64_t upto) {
    size_t n = 0;
    while (n < log_.size() && (log_[n].done_seq < upto || log_[n].fua)) {
      const Completed& c = log_[n];
      std::memcpy(flushed_.data() + c.offset, c.data.data(), c.data.size());
      ++n;
    }
    log_.erase(log_.begin(), log_.begin() + n);
  }

  ScheduleAfter schedule_;
  Random random_;
  std::vector<std::byte> current_;
  std::vector<std::byte> flushed_;  // the media, but for FUA writes still in log_
  std::vector<Completed> log_;      // completed writes not folded into flushed_
  std::map<uint64_t, IoRequest*> in_flight_;
  uint64_t next_id_ = 1;
  uint64_t next_done_ = 0;
};

}  // namespace thinp::testing
