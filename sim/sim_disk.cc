// The request path of SimDisk: submission, latency, completion and faults.
// Crash-state construction lives in sim_disk_crash.cc.
#include "sim/sim_disk.h"

#include <algorithm>
#include <cstring>

#include "engine/base/assert.h"
#include "engine/base/hash.h"

namespace thinp::sim {

SimDisk::SimDisk(Scheduler& sched, DiskMedia& media, IoTrace& trace, SimDiskOptions options,
                 Random rng)
    : BlockDevice(sched),
      sched_(sched),
      media_(media),
      trace_(trace),
      options_(std::move(options)),
      rng_(rng),
      boot_(trace.begin_boot()) {
  TraceEvent ev;
  ev.kind = TraceKind::boot;
  ev.boot = boot_;
  ev.time_ns = sched_.now().count();
  ev.offset_bytes = media_.sector_bytes();
  ev.length_bytes = media_.size_bytes();
  ev.flush_epoch = trace_.flush_epoch();
  ev.note = options_.name + " sector=" + std::to_string(media_.sector_bytes()) +
            " faults=" + options_.faults.to_string() +
            (options_.bugs.flush_noop ? " BUG=flush_noop" : "") +
            (options_.bugs.hide_lost_writes ? " BUG=hide_lost_writes" : "");
  trace_.record(std::move(ev));
}

SimDisk::~SimDisk() { *alive_ = false; }

size_t SimDisk::cached_version_count() const {
  size_t n = 0;
  for (const auto& [sector, versions] : cache_) n += versions.size();
  return n;
}

Nanos SimDisk::draw_latency(IoOp op) {
  const LatencyConfig& l = options_.latency;
  Nanos lo = l.write_min, hi = l.write_max;
  if (op == IoOp::read) lo = l.read_min, hi = l.read_max;
  if (op == IoOp::flush) lo = l.flush_min, hi = l.flush_max;
  TP_ASSERT_LE(lo.count(), hi.count());
  int64_t ns = static_cast<int64_t>(rng_.range(lo.count(), hi.count()));
  if (rng_.chance(l.tail_probability)) ns *= static_cast<int64_t>(rng_.range(2, l.tail_factor));
  return Nanos(ns);
}

TraceEvent SimDisk::base_event(TraceKind kind, const Pending& p) const {
  TraceEvent ev;
  ev.kind = kind;
  ev.boot = boot_;
  ev.io_id = p.io_id;
  ev.op = p.op;
  ev.fua = p.fua;
  ev.offset_bytes = p.first_sector * media_.sector_bytes();
  ev.length_bytes = p.sector_count * media_.sector_bytes();
  ev.time_ns = sched_.now().count();
  ev.submit_time_ns = p.submit_time.count();
  ev.flush_epoch = trace_.flush_epoch();
  return ev;
}

void SimDisk::note_fault(TraceEvent& ev, FaultKind f) {
  ev.fault = f;
  ++fault_counts_[static_cast<size_t>(f)];
}

void SimDisk::submit(IoRequest* req) {
  TP_ASSERT(req != nullptr);
  TP_ASSERT_MSG(!crashed_, "IO submitted to a crashed SimDisk");
  TP_ASSERT(req->on_complete != nullptr);
  const uint32_t sb = media_.sector_bytes();
  Pending p;
  p.io_id = trace_.allocate_io_id();
  p.req = req;
  p.op = req->op;
  p.fua = req->op == IoOp::write && req->fua;
  p.submit_time = sched_.now();
  p.status = validate(*req);
  if (p.status.ok() && p.op != IoOp::flush) {
    p.first_sector = req->offset_bytes / sb;
    p.sector_count = req->length_bytes / sb;
  }
  TraceEvent ev = base_event(TraceKind::submit, p);
  ev.status = p.status.code();
  Nanos latency{0};
  if (p.status.ok()) {
    if (p.op == IoOp::write || p.op == IoOp::discard) {
      // Copy now: the contract lets the caller reuse nothing until completion,
      // but a copy makes the data immune to a buffer the caller abandons in a crash.
      if (p.op == IoOp::write) {
        p.data.assign(req->data, req->data + req->length_bytes);
      } else {
        p.data.assign(req->length_bytes, std::byte{0});
      }
      for (uint64_t i = 0; i < p.sector_count; ++i) {
        ev.sector_hashes.push_back(hash_bytes(std::span(p.data).subspan(i * sb, sb)));
      }
      ev.content_hash = combine_sector_hashes(ev.sector_hashes);
    }
    if (p.op == IoOp::flush) p.flush_watermark = completed_writes_;
    latency = draw_latency(p.op);
    if (rng_.chance(options_.faults.slow)) {
      latency *= options_.faults.slow_factor;
      note_fault(ev, FaultKind::slow);
      p.slow = true;
    }
  }
  const uint64_t id = p.io_id;
  in_flight_.emplace(id, std::move(p));
  trace_.record(std::move(ev));
  sched_.schedule_after(latency, [this, id, alive = alive_] {
    if (*alive && !crashed_) complete(id);
  });
}

void SimDisk::complete(uint64_t io_id) {
  auto node = in_flight_.extract(io_id);
  TP_ASSERT(!node.empty());
  Pending& p = node.mapped();
  TraceEvent ev = base_event(TraceKind::complete, p);
  if (p.slow) ev.fault = FaultKind::slow;
  Status status = p.status;
  bool corrupt_after = false;
  if (status.ok()) {
    switch (p.op) {
      case IoOp::read: status = complete_read(p, ev); break;
      case IoOp::write:
      case IoOp::discard: status = complete_write(p, ev, corrupt_after); break;
      case IoOp::flush: status = complete_flush(p, ev); break;
    }
  }
  ev.status = status.code();
  ev.flush_epoch = trace_.flush_epoch();
  trace_.record(std::move(ev));
  if (corrupt_after) inject_bit_flip();
  // The request (and the task owning it) may be gone as soon as this returns.
  p.req->on_complete(std::move(status));
}

Status SimDisk::complete_read(Pending& p, TraceEvent& ev) {
  if (rng_.chance(options_.faults.read_error)) {
    note_fault(ev, FaultKind::read_error);
    return Status(Errc::io_error, "injected read error at byte " +
                                      std::to_string(ev.offset_bytes) + " on " + name());
  }
  const uint32_t sb = media_.sector_bytes();
  for (uint64_t i = 0; i < p.sector_count; ++i) {
    const uint64_t sector = p.first_sector + i;
    std::span<std::byte> out(p.req->data + i * sb, sb);
    auto it = cache_.find(sector);
    if (it != cache_.end()) {
      TP_ASSERT(!it->second.empty());
      std::memcpy(out.data(), it->second.back().bytes.data(), sb);
    } else {
      media_.read_sector(sector, out);
    }
    ev.sector_hashes.push_back(hash_bytes(out));
  }
  ev.content_hash = combine_sector_hashes(ev.sector_hashes);
  return ok_status();
}

Status SimDisk::complete_write(Pending& p, TraceEvent& ev, bool& corrupt_after) {
  const FaultConfig& f = options_.faults;
  const uint64_t end_bytes = (p.first_sector + p.sector_count) * media_.sector_bytes();
  if (f.full_limit_bytes && end_bytes > *f.full_limit_bytes) {
    note_fault(ev, FaultKind::device_full);
    return Status(Errc::no_space, "device full: " + name() + " accepts no write past byte " +
                                      std::to_string(*f.full_limit_bytes));
  }
  if (rng_.chance(f.write_error)) {
    note_fault(ev, FaultKind::write_error);
    return Status(Errc::io_error, "injected write error at byte " +
                                      std::to_string(ev.offset_bytes) + " on " + name());
  }
  const uint64_t seq = ++completed_writes_;
  if (rng_.chance(f.lost_write)) {
    if (!options_.bugs.hide_lost_writes) note_fault(ev, FaultKind::lost_write);
  } else {
    uint64_t landing = p.first_sector;
    if (rng_.chance(f.misdirect)) {
      landing = rng_.uniform(media_.sector_count() - p.sector_count + 1);
      note_fault(ev, FaultKind::misdirect);
      ev.fault_offset_bytes = landing * media_.sector_bytes();
    }
    land_write(p, landing, seq);
  }
  corrupt_after = rng_.chance(f.bit_flip);
  return ok_status();
}

void SimDisk::land_write(const Pending& p, uint64_t first_sector, uint64_t seq) {
  const uint32_t sb = media_.sector_bytes();
  for (uint64_t i = 0; i < p.sector_count; ++i) {
    const uint64_t sector = first_sector + i;
    std::span<const std::byte> bytes(p.data.data() + i * sb, sb);
    if (p.fua) {
      media_.write_sector(sector, bytes);
      cache_.erase(sector);  // an older cached version must never overwrite this one
    } else {
      cache_[sector].push_back(CachedSector{seq, p.io_id, first_sector, p.sector_count,
                                            SectorBytes(bytes.begin(), bytes.end())});
    }
  }
}

Status SimDisk::complete_flush(Pending& p, TraceEvent& ev) {
  if (rng_.chance(options_.faults.write_error)) {
    note_fault(ev, FaultKind::write_error);
    return Status(Errc::io_error, "injected flush error on " + name());
  }
  if (!options_.bugs.flush_noop) persist_through(p.flush_watermark);
  trace_.advance_flush_epoch();
  return ok_status();
}

void SimDisk::persist_through(uint64_t watermark_seq) {
  for (auto it = cache_.begin(); it != cache_.end();) {
    std::vector<CachedSector>& versions = it->second;
    // Versions are in completion order: the ones to persist are a prefix,
    // and the newest of them is what the media keeps.
    auto end = std::find_if(versions.begin(), versions.end(),
                            [&](const CachedSector& v) { return v.seq > watermark_seq; });
    if (end != versions.begin()) {
      media_.write_sector(it->first, std::prev(end)->bytes);
      versions.erase(versions.begin(), end);
    }
    it = versions.empty() ? cache_.erase(it) : std::next(it);
  }
}

void SimDisk::inject_bit_flip() {
  if (media_.written_sector_count() == 0) return;
  const uint64_t sector = media_.written_sector(rng_.uniform(media_.written_sector_count()));
  const uint64_t bit = rng_.uniform(uint64_t{media_.sector_bytes()} * 8);
  TraceEvent ev;
  ev.kind = TraceKind::corrupt;
  ev.boot = boot_;
  ev.io_id = trace_.allocate_io_id();
  ev.offset_bytes = sector * media_.sector_bytes();
  ev.length_bytes = media_.sector_bytes();
  ev.time_ns = sched_.now().count();
  ev.flush_epoch = trace_.flush_epoch();
  ev.fault_offset_bytes = ev.offset_bytes;
  ev.prior_hash = media_.sector_hash(sector);
  ev.content_hash = media_.flip_bit(sector, bit);
  note_fault(ev, FaultKind::bit_flip);
  trace_.record(std::move(ev));
}

}  // namespace thinp::sim
