// DiskModel: what the device contract allows a read to return.
//
// The oracle for sim/sim_disk.h, written from the contract in
// engine/io/block_device.h rather than from the disk's implementation. It is
// fed the disk's events in the order they happened (a scenario forwards
// them from the IoTrace; a replay reads them from a saved trace) and keeps,
// per sector, the *set* of contents the contract still allows:
//
//   - durable candidates: what the media may hold. One value while the
//     history is known; after a crash, every value the crash could have left
//     (the durable value, plus each non-durable write's value: writes may be
//     kept, dropped or torn independently, so per sector any of them). A read
//     that finds one of them pins the set back to that value.
//   - pending versions: writes that completed into the volatile cache and are
//     not yet known durable, in completion order. A FLUSH makes durable the
//     ones that completed before it was submitted; a FUA write is durable on
//     completion and supersedes older pending versions.
//   - writes in flight: a read may see old or new data for their sectors.
//
// A read's allowed set is fixed when it completes: what was readable when it
// was submitted (newest pending version, else the durable candidates), plus
// the value of every write in flight over it, plus every value its sectors
// took while it was in flight.
//
// Silent faults are accounted exactly, from the events that report them: a
// lost write changes nothing; a misdirected write lands at the reported
// offset instead of its own; latent corruption replaces a durable value by
// the reported one, after checking that the value it replaced was one the
// model allowed (a disk whose media disagrees with the model is caught there
// too). Nothing is ever widened to "anything goes".
//
// Precision. Per sector the sets are exact for the contract as written
// ("each non-durable write kept, dropped or torn at sector granularity"):
// any surviving version of any sector is allowed independently of its
// neighbours. The model does not check the disk's coarser tear unit
// (CrashOptions::tear_sectors): that is the disk's own promise, tested in
// sim/sim_disk_test.cc.
//
// Contents are 64-bit hashes of sector bytes, so the model is cheap. Sectors
// never touched are implicit (they hold zeros). Single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace thinp::models {

// A value a sector may hold: its content hash, and for messages, the io id
// that produced it (0: the initial zeros).
struct SectorValue {
  uint64_t hash = 0;
  uint64_t source = 0;
};

// "io#12:3fa9c0de" or "zeros:..." for each value, comma separated.
std::string describe_values(const std::vector<SectorValue>& values);

enum class WriteOutcome : uint8_t {
  applied,  // completed successfully and landed (maybe misdirected)
  failed,   // completed with an error: changed nothing
  lost,     // reported success but changed nothing (injected lost write)
};

struct DiskModelStats {
  uint64_t reads_checked = 0;
  uint64_t sectors_checked = 0;
  uint64_t sectors_pinned = 0;  // post-crash candidate sets narrowed by a read
  uint64_t crashes = 0;
};

class DiskModel {
 public:
  DiskModel(uint32_t sector_bytes, uint64_t sector_count, uint64_t zero_sector_hash);

  // --- Events, in the order the disk reports them ---------------------------
  // Discards are writes of zeros. `sector_hashes` has one hash per sector.
  void write_submitted(uint64_t io_id, uint64_t first_sector, std::vector<uint64_t> sector_hashes,
                       bool fua);
  // `landed_first_sector` is where an applied write landed: its own first
  // sector, or the misdirect target.
  void write_completed(uint64_t io_id, WriteOutcome outcome, uint64_t landed_first_sector);
  void flush_submitted(uint64_t io_id);
  void flush_completed(uint64_t io_id, bool ok);
  void read_submitted(uint64_t io_id, uint64_t first_sector, uint64_t sector_count);
  // Fixes the read's allowed sets. When `returned` (one hash per sector) is
  // given, checks it and uses it to pin post-crash candidate sets; a failed
  // read passes ok=false and nothing is checked. Even when the check fails
  // the read stays available to check_read.
  Status read_completed(uint64_t io_id, bool ok, const std::vector<uint64_t>& returned);
  // Latent corruption of a durable sector, as the disk reported it. Fails if
  // `before_hash` is not a value the model allowed on the media.
  Status media_corrupted(uint64_t io_id, uint64_t sector, uint64_t before_hash,
                         uint64_t after_hash);
  // Power loss: every non-durable value becomes a durable candidate; reads
  // and writes in flight are forgotten.
  void crash();

  // Checks the data a caller received for read `io_id` (one hash per sector)
  // against the allowed sets fixed at its completion, and forgets the read.
  // Reads that failed, or were never completed, cannot be checked.
  // On a mismatch, `*bad_sector` (if given) is set to the first wrong sector.
  Status check_read(uint64_t io_id, const std::vector<uint64_t>& received,
                    uint64_t* bad_sector = nullptr);

  // --- Queries (tests, failure messages) ------------------------------------
  // What a read submitted now may return, before any later event.
  std::vector<SectorValue> readable(uint64_t sector) const;
  // What the media may hold now.
  std::vector<SectorValue> durable(uint64_t sector) const;
  // What the sector may hold after a crash now.
  std::vector<SectorValue> after_crash(uint64_t sector) const;

  const DiskModelStats& stats() const { return stats_; }
  uint32_t sector_bytes() const { return sector_bytes_; }
  uint64_t sector_count() const { return sector_count_; }

 private:
  struct PendingVersion {
    uint64_t seq;  // completion order
    SectorValue value;
  };
  struct SectorState {
    std::vector<SectorValue> durable;  // never empty
    std::vector<PendingVersion> pending;
  };
  struct WriteInFlight {
    uint64_t first_sector;
    std::vector<uint64_t> hashes;
    bool fua;
  };
  struct Read {
    uint64_t first_sector;
    std::vector<std::vector<SectorValue>> allowed;  // per sector
  };

  SectorState& state(uint64_t sector);
  const SectorState* find_state(uint64_t sector) const;
  // Adds `v` to the allowed set of every open read covering `sector`.
  void widen_open_reads(uint64_t sector, const SectorValue& v);
  void add_in_flight_values(uint64_t sector, std::vector<SectorValue>& out) const;
  Status check_values(uint64_t io_id, const Read& r, const std::vector<uint64_t>& hashes,
                      const char* who, uint64_t* bad_sector = nullptr) const;

  uint32_t sector_bytes_;
  uint64_t sector_count_;
  SectorValue zero_;
  uint64_t completed_writes_ = 0;
  std::map<uint64_t, SectorState> sectors_;       // touched sectors only
  std::set<uint64_t> dirty_;                      // sectors with pending versions
  std::map<uint64_t, WriteInFlight> writes_in_flight_;
  std::map<uint64_t, uint64_t> flushes_in_flight_;  // io id -> completed-write watermark
  std::map<uint64_t, Read> open_reads_;
  std::map<uint64_t, Read> finished_reads_;         // awaiting check_read
  DiskModelStats stats_;
};

}  // namespace thinp::models
