#include "models/disk_model.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "engine/base/assert.h"

namespace thinp::models {
namespace {

bool contains(const std::vector<SectorValue>& set, uint64_t hash) {
  return std::any_of(set.begin(), set.end(), [&](const SectorValue& v) { return v.hash == hash; });
}

void add_unique(std::vector<SectorValue>& set, const SectorValue& v) {
  if (!contains(set, v.hash)) set.push_back(v);
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

}  // namespace

std::string describe_values(const std::vector<SectorValue>& values) {
  std::string s;
  for (const SectorValue& v : values) {
    if (!s.empty()) s += ", ";
    s += (v.source == 0 ? std::string("zeros") : "io#" + std::to_string(v.source)) + ":" +
         hex(v.hash);
  }
  return "{" + s + "}";
}

DiskModel::DiskModel(uint32_t sector_bytes, uint64_t sector_count, uint64_t zero_sector_hash)
    : sector_bytes_(sector_bytes), sector_count_(sector_count), zero_{zero_sector_hash, 0} {
  TP_ASSERT_GT(sector_bytes, 0u);
  TP_ASSERT_GT(sector_count, 0u);
}

DiskModel::SectorState& DiskModel::state(uint64_t sector) {
  TP_ASSERT_LT(sector, sector_count_);
  auto [it, inserted] = sectors_.try_emplace(sector);
  if (inserted) it->second.durable.push_back(zero_);
  return it->second;
}

const DiskModel::SectorState* DiskModel::find_state(uint64_t sector) const {
  auto it = sectors_.find(sector);
  return it == sectors_.end() ? nullptr : &it->second;
}

std::vector<SectorValue> DiskModel::durable(uint64_t sector) const {
  const SectorState* s = find_state(sector);
  return s ? s->durable : std::vector<SectorValue>{zero_};
}

std::vector<SectorValue> DiskModel::readable(uint64_t sector) const {
  const SectorState* s = find_state(sector);
  if (s == nullptr) return {zero_};
  if (!s->pending.empty()) return {s->pending.back().value};
  return s->durable;
}

std::vector<SectorValue> DiskModel::after_crash(uint64_t sector) const {
  std::vector<SectorValue> out = durable(sector);
  if (const SectorState* s = find_state(sector)) {
    for (const PendingVersion& p : s->pending) add_unique(out, p.value);
  }
  add_in_flight_values(sector, out);
  return out;
}

void DiskModel::add_in_flight_values(uint64_t sector, std::vector<SectorValue>& out) const {
  for (const auto& [id, w] : writes_in_flight_) {
    if (sector >= w.first_sector && sector < w.first_sector + w.hashes.size()) {
      add_unique(out, SectorValue{w.hashes[sector - w.first_sector], id});
    }
  }
}

void DiskModel::widen_open_reads(uint64_t sector, const SectorValue& v) {
  for (auto& [id, r] : open_reads_) {
    if (sector >= r.first_sector && sector < r.first_sector + r.allowed.size()) {
      add_unique(r.allowed[sector - r.first_sector], v);
    }
  }
}

void DiskModel::write_submitted(uint64_t io_id, uint64_t first_sector,
                                std::vector<uint64_t> sector_hashes, bool fua) {
  TP_ASSERT(!sector_hashes.empty());
  TP_ASSERT_LE(first_sector + sector_hashes.size(), sector_count_);
  for (size_t i = 0; i < sector_hashes.size(); ++i) {
    widen_open_reads(first_sector + i, SectorValue{sector_hashes[i], io_id});
  }
  auto [it, inserted] =
      writes_in_flight_.try_emplace(io_id, WriteInFlight{first_sector, std::move(sector_hashes), fua});
  TP_ASSERT_MSG(inserted, "io id submitted twice");
}

void DiskModel::write_completed(uint64_t io_id, WriteOutcome outcome, uint64_t landed_first_sector) {
  auto node = writes_in_flight_.extract(io_id);
  TP_ASSERT_MSG(!node.empty(), "completion of a write the model never saw submitted");
  const WriteInFlight& w = node.mapped();
  if (outcome == WriteOutcome::failed) return;
  // Lost writes still take a completion slot: the disk counts them among
  // the writes a later flush covers, and so must the watermark.
  const uint64_t seq = ++completed_writes_;
  if (outcome == WriteOutcome::lost) return;
  TP_ASSERT_LE(landed_first_sector + w.hashes.size(), sector_count_);
  for (size_t i = 0; i < w.hashes.size(); ++i) {
    const uint64_t sector = landed_first_sector + i;
    const SectorValue v{w.hashes[i], io_id};
    SectorState& s = state(sector);
    if (w.fua) {
      s.durable = {v};
      s.pending.clear();  // older versions can never be written back over it
      dirty_.erase(sector);
    } else {
      s.pending.push_back(PendingVersion{seq, v});
      dirty_.insert(sector);
    }
    widen_open_reads(sector, v);
  }
}

void DiskModel::flush_submitted(uint64_t io_id) {
  auto [it, inserted] = flushes_in_flight_.try_emplace(io_id, completed_writes_);
  TP_ASSERT_MSG(inserted, "io id submitted twice");
}

void DiskModel::flush_completed(uint64_t io_id, bool ok) {
  auto node = flushes_in_flight_.extract(io_id);
  TP_ASSERT_MSG(!node.empty(), "completion of a flush the model never saw submitted");
  if (!ok) return;
  const uint64_t watermark = node.mapped();
  for (auto it = dirty_.begin(); it != dirty_.end();) {
    SectorState& s = sectors_.at(*it);
    // Pending versions are in completion order; the durable ones are a prefix
    // and the newest of them is what the media holds.
    auto end = std::find_if(s.pending.begin(), s.pending.end(),
                            [&](const PendingVersion& p) { return p.seq > watermark; });
    if (end != s.pending.begin()) {
      s.durable = {std::prev(end)->value};
      s.pending.erase(s.pending.begin(), end);
    }
    it = s.pending.empty() ? dirty_.erase(it) : std::next(it);
  }
}

void DiskModel::read_submitted(uint64_t io_id, uint64_t first_sector, uint64_t sector_count) {
  TP_ASSERT_LE(first_sector + sector_count, sector_count_);
  Read r{first_sector, {}};
  r.allowed.reserve(sector_count);
  for (uint64_t i = 0; i < sector_count; ++i) {
    std::vector<SectorValue> allowed = readable(first_sector + i);
    add_in_flight_values(first_sector + i, allowed);
    r.allowed.push_back(std::move(allowed));
  }
  auto [it, inserted] = open_reads_.try_emplace(io_id, std::move(r));
  TP_ASSERT_MSG(inserted, "io id submitted twice");
}

Status DiskModel::check_values(uint64_t io_id, const Read& r, const std::vector<uint64_t>& hashes,
                               const char* who, uint64_t* bad_sector) const {
  if (hashes.size() != r.allowed.size()) {
    return Status(Errc::corruption, std::string(who) + " " + std::to_string(hashes.size()) +
                                        " sectors for read io#" + std::to_string(io_id) +
                                        " of " + std::to_string(r.allowed.size()));
  }
  for (size_t i = 0; i < hashes.size(); ++i) {
    if (contains(r.allowed[i], hashes[i])) continue;
    const uint64_t sector = r.first_sector + i;
    if (bad_sector) *bad_sector = sector;
    return Status(Errc::corruption,
                  "read io#" + std::to_string(io_id) + ": sector " + std::to_string(sector) +
                      " (byte " + std::to_string(sector * sector_bytes_) + ") " + who + " " +
                      hex(hashes[i]) + ", not an allowed value " + describe_values(r.allowed[i]) +
                      "; after a crash now it could be " + describe_values(after_crash(sector)));
  }
  return ok_status();
}

Status DiskModel::read_completed(uint64_t io_id, bool ok, const std::vector<uint64_t>& returned) {
  auto node = open_reads_.extract(io_id);
  TP_ASSERT_MSG(!node.empty(), "completion of a read the model never saw submitted");
  if (!ok) return ok_status();
  Read& r = node.mapped();
  if (!returned.empty()) {
    Status bad = check_values(io_id, r, returned, "the disk returned");
    if (!bad.ok()) {
      finished_reads_.insert(std::move(node));  // check_read still reports it, with context
      return bad;
    }
    // Pin post-crash candidate sets. Sound only while nothing but the media
    // could have served the read: no pending version and no write in flight.
    for (size_t i = 0; i < returned.size(); ++i) {
      const uint64_t sector = r.first_sector + i;
      auto it = sectors_.find(sector);
      if (it == sectors_.end() || it->second.durable.size() < 2 || !it->second.pending.empty()) {
        continue;
      }
      std::vector<SectorValue> in_flight;
      add_in_flight_values(sector, in_flight);
      if (!in_flight.empty()) continue;
      for (const SectorValue& v : it->second.durable) {
        if (v.hash == returned[i]) {
          it->second.durable = {v};
          ++stats_.sectors_pinned;
          break;
        }
      }
    }
  }
  finished_reads_.insert(std::move(node));
  return ok_status();
}

Status DiskModel::check_read(uint64_t io_id, const std::vector<uint64_t>& received,
                             uint64_t* bad_sector) {
  auto node = finished_reads_.extract(io_id);
  if (node.empty()) {
    return Status(Errc::not_found, "read io#" + std::to_string(io_id) +
                                       " did not complete successfully in the model");
  }
  ++stats_.reads_checked;
  stats_.sectors_checked += received.size();
  return check_values(io_id, node.mapped(), received, "the caller received", bad_sector);
}

Status DiskModel::media_corrupted(uint64_t io_id, uint64_t sector, uint64_t before_hash,
                                  uint64_t after_hash) {
  SectorState& s = state(sector);
  if (!contains(s.durable, before_hash)) {
    return Status(Errc::corruption,
                  "latent corruption event io#" + std::to_string(io_id) + " found sector " +
                      std::to_string(sector) + " holding " + hex(before_hash) +
                      " on media, but the model allows only " + describe_values(s.durable) +
                      " there (a write the model counts as durable is missing)");
  }
  const SectorValue v{after_hash, io_id};
  s.durable = {v};
  if (s.pending.empty()) widen_open_reads(sector, v);
  return ok_status();
}

void DiskModel::crash() {
  ++stats_.crashes;
  for (uint64_t sector : dirty_) {
    SectorState& s = sectors_.at(sector);
    for (const PendingVersion& p : s.pending) add_unique(s.durable, p.value);
    s.pending.clear();
  }
  dirty_.clear();
  for (const auto& [id, w] : writes_in_flight_) {
    for (size_t i = 0; i < w.hashes.size(); ++i) {
      add_unique(state(w.first_sector + i).durable, SectorValue{w.hashes[i], id});
    }
  }
  writes_in_flight_.clear();
  flushes_in_flight_.clear();
  open_reads_.clear();
  finished_reads_.clear();
}

}  // namespace thinp::models
