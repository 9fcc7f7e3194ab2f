// Crash-state construction for SimDisk (the method is described in the essay
// at the top of sim_disk.h).
#include <map>
#include <sstream>

#include "engine/base/assert.h"
#include "engine/base/hash.h"
#include "sim/sim_disk.h"

namespace thinp::sim {
namespace {

// Draws the fate of one non-durable write covering `sector_count` sectors.
CrashChoice draw_choice(Random& rng, const CrashOptions& o, uint64_t io_id, bool in_flight,
                        uint64_t first_sector, uint64_t sector_count) {
  CrashChoice c;
  c.io_id = io_id;
  c.in_flight = in_flight;
  c.first_sector = first_sector;
  c.sector_count = sector_count;
  if (rng.chance(o.tear_probability)) {
    c.fate = CrashFate::torn;
    const uint64_t chunks = (sector_count + o.tear_sectors - 1) / o.tear_sectors;
    for (uint64_t i = 0; i < chunks; ++i) c.chunk_kept.push_back(rng.chance(0.5));
  } else {
    c.fate = rng.chance(o.keep_probability) ? CrashFate::kept : CrashFate::dropped;
  }
  return c;
}

// Whether sector `index` (counted from the write's first sector) survives.
bool survives(const CrashChoice& c, uint64_t index, uint32_t tear_sectors) {
  switch (c.fate) {
    case CrashFate::kept: return true;
    case CrashFate::dropped: return false;
    case CrashFate::torn: return c.chunk_kept.at(index / tear_sectors);
  }
  TP_UNREACHABLE();
}

}  // namespace

const char* crash_fate_name(CrashFate f) {
  switch (f) {
    case CrashFate::kept: return "kept";
    case CrashFate::dropped: return "dropped";
    case CrashFate::torn: return "torn";
  }
  return "?";
}

std::string CrashReport::summary() const {
  uint64_t kept = 0, dropped = 0, torn = 0;
  for (const CrashChoice& c : choices) {
    kept += c.fate == CrashFate::kept;
    dropped += c.fate == CrashFate::dropped;
    torn += c.fate == CrashFate::torn;
  }
  std::ostringstream os;
  os << "tear=" << tear_sectors << " writes=" << choices.size() << " kept=" << kept
     << " dropped=" << dropped << " torn=" << torn << " sectors_kept=" << sectors_kept
     << " sectors_dropped=" << sectors_dropped;
  return os.str();
}

CrashReport SimDisk::crash(Random& rng, const CrashOptions& options) {
  TP_ASSERT_MSG(!crashed_, "a SimDisk crashes once");
  TP_ASSERT_GE(options.tear_sectors, 1u);
  crashed_ = true;
  CrashReport report;
  report.tear_sectors = options.tear_sectors;

  // 1. The completed but non-durable writes, in completion order. The cache
  // is indexed by sector; rebuild the per-write view from it.
  struct CachedWrite {
    uint64_t io_id, first_sector, sector_count;
  };
  std::map<uint64_t, CachedWrite> cached;  // by seq
  for (const auto& [sector, versions] : cache_) {
    for (const CachedSector& v : versions) {
      cached.try_emplace(v.seq, CachedWrite{v.io_id, v.write_first_sector, v.write_sector_count});
    }
  }
  std::map<uint64_t, size_t> choice_of_seq;
  for (const auto& [seq, w] : cached) {
    choice_of_seq[seq] = report.choices.size();
    report.choices.push_back(
        draw_choice(rng, options, w.io_id, false, w.first_sector, w.sector_count));
  }
  for (const auto& [sector, versions] : cache_) {
    for (const CachedSector& v : versions) {
      const CrashChoice& c = report.choices[choice_of_seq.at(v.seq)];
      if (survives(c, sector - v.write_first_sector, options.tear_sectors)) {
        media_.write_sector(sector, v.bytes);  // oldest first: the newest survivor wins
        ++report.sectors_kept;
      } else {
        ++report.sectors_dropped;
      }
    }
  }

  // 2. Writes still in flight, in submission order. Overlapping writes are
  // never in flight together, so each is newer than every cached version of
  // its sectors and is applied after them.
  const uint32_t sb = media_.sector_bytes();
  for (const auto& [id, p] : in_flight_) {
    if (!p.status.ok() || (p.op != IoOp::write && p.op != IoOp::discard)) continue;
    CrashChoice c = draw_choice(rng, options, id, true, p.first_sector, p.sector_count);
    for (uint64_t i = 0; i < p.sector_count; ++i) {
      if (survives(c, i, options.tear_sectors)) {
        media_.write_sector(p.first_sector + i, std::span(p.data).subspan(i * sb, sb));
        ++report.sectors_kept;
      } else {
        ++report.sectors_dropped;
      }
    }
    report.choices.push_back(std::move(c));
  }
  cache_.clear();
  in_flight_.clear();
  record_crash(report);
  return report;
}

void SimDisk::record_crash(const CrashReport& report) {
  TraceEvent ev;
  ev.kind = TraceKind::crash;
  ev.boot = boot_;
  ev.io_id = trace_.allocate_io_id();
  ev.time_ns = sched_.now().count();
  ev.flush_epoch = trace_.flush_epoch();
  Digest d;
  for (const CrashChoice& c : report.choices) {
    d.add_u64(c.io_id);
    d.add_u64(static_cast<uint64_t>(c.fate));
    for (bool k : c.chunk_kept) d.add_u64(k);
  }
  ev.content_hash = d.value();
  ev.note = report.summary();
  trace_.record(std::move(ev));
}

}  // namespace thinp::sim
