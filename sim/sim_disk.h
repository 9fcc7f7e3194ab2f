// SimDisk: a simulated block device, and its fault model.
//
// A disk is not a byte array. It is a write cache in front of media, with a
// queue that reorders requests, a power supply that can fail between any two
// of them, and firmware that is sometimes wrong. Storage engines lose data in
// the gaps between those parts, so the simulator models each gap on purpose,
// and writes down here exactly which liberties the disk takes. Everything
// else, and only that, is what models/disk_model.h allows a read to return.
//
// Reordering. Every request completes after a latency drawn from a
// LatencyConfig: uniform within a band for its class (read, write, flush)
// plus an occasional long tail, and a "slow" fault that multiplies it again.
// Completion order is therefore not submission order, and the engine gets no
// ordering it did not ask for. Two overlapping writes in flight at once are a
// caller bug (the contract forbids them); the disk does not try to make them
// mean anything.
//
// The volatile cache. A write completes into a cache, not onto media. Reads
// see the newest completed write of each sector (cache first, then media),
// resolved when the read completes; a write still in flight is invisible
// until it completes. FLUSH, when it completes, writes to media every cache
// entry that completed before the flush was submitted: later ones stay
// volatile. A FUA write goes to media when it completes and drops any older
// cached version of its sectors, so a later flush cannot resurrect them.
// Discard is a write of zeros with the same cache semantics: it reads as
// zeros once it completes, and like any write is durable only after a flush.
//
// Crashes. Power loss is SimDisk::crash(): the media keeps what is durable,
// and each write that is not (completed but unflushed, or still in flight)
// is independently kept, dropped, or torn. A torn write is split into
// aligned chunks of `tear_sectors` sectors (counted from the write's first
// sector) and each chunk is kept or dropped on its own: the tear size is the
// device's atomic write unit, and reports print it. Versions of one sector
// that survive are applied oldest first, so the newest survivor wins, just as
// a cache that wrote back some of its dirty lines would leave it. The crash
// consumes the SimDisk; a new SimDisk over the same DiskMedia is the reboot.
//
// Faults, each with its own per-IO probability (fault_config.h), drawn when
// the request completes, from the disk's own seeded stream:
//   - read error: the read fails with io_error; the buffer is untouched.
//   - write error: the write (or flush) fails with io_error and changes
//     nothing, cache or media. A real disk may leave a failed range half
//     written; the simplification is deliberate and the model follows it.
//   - lost write: the write reports success and changes nothing.
//   - misdirected write: the write reports success and lands, whole, at a
//     random other offset of the same length, with its own cache/FUA fate.
//   - latent corruption: after a successful write, one bit of one durable
//     sector (chosen among sectors ever written) flips on the media. A cached
//     newer version hides it until the cache is flushed over it or lost.
//   - slow IO: the latency is multiplied by slow_factor.
//   - device full: a write or discard reaching past full_limit_bytes fails
//     with no_space (a fixed boundary; see FaultConfig).
// Silent faults (lost, misdirected, corrupt) are visible only in the trace:
// each is recorded there with enough detail (landing offset, hashes before
// and after) that the model can account for it exactly rather than give up
// on the sectors involved.
//
// Every submission, completion, corruption, crash and boot is an event in
// the IoTrace (trace.h). Completions are scheduler events: on_complete runs
// in scheduler context at the completion's virtual time, never inside
// submit().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/random.h"
#include "engine/io/block_device.h"
#include "sim/fault_config.h"
#include "sim/scheduler.h"
#include "sim/sim_disk_media.h"
#include "sim/trace.h"

namespace thinp::sim {

struct SimDiskOptions {
  std::string name = "sim-disk";
  LatencyConfig latency;
  FaultConfig faults;
  DiskBugs bugs;
};

struct CrashOptions {
  uint32_t tear_sectors = 1;       // the atomic write unit, in sectors (>= 1)
  double tear_probability = 0.25;  // a non-durable write is torn with this probability,
  double keep_probability = 0.5;   // else kept whole with this one, else dropped
};

enum class CrashFate : uint8_t { kept, dropped, torn };
const char* crash_fate_name(CrashFate f);

// What crash() decided for one non-durable write.
struct CrashChoice {
  uint64_t io_id = 0;
  bool in_flight = false;        // true: never completed; false: completed but not durable
  uint64_t first_sector = 0;     // where it lands (after a misdirect, the landing place)
  uint64_t sector_count = 0;
  CrashFate fate = CrashFate::kept;
  std::vector<bool> chunk_kept;  // torn: one flag per tear chunk
};

struct CrashReport {
  uint32_t tear_sectors = 1;
  std::vector<CrashChoice> choices;  // cached writes by completion order, then in-flight by id
  uint64_t sectors_kept = 0;         // sector versions applied to media
  uint64_t sectors_dropped = 0;      // sector versions lost
  // "tear=4 writes=7 kept=3 dropped=2 torn=2 sectors_kept=18 sectors_dropped=11"
  std::string summary() const;
};

class SimDisk final : public BlockDevice {
 public:
  // `media` and `trace` must outlive the SimDisk. The disk draws latencies,
  // faults and misdirect targets from `rng` only. Records a boot event.
  SimDisk(Scheduler& sched, DiskMedia& media, IoTrace& trace, SimDiskOptions options, Random rng);
  ~SimDisk() override;

  // BlockDevice. Completion is always a scheduler event (see the essay).
  void submit(IoRequest* req) override;
  uint64_t size_bytes() const override { return media_.size_bytes(); }
  uint32_t logical_sector_bytes() const override { return media_.sector_bytes(); }
  std::string name() const override { return options_.name; }

  // The io id the next submit() will be given: lets a caller match its
  // request to trace events (submit() takes it without suspending).
  uint64_t next_io_id() const { return trace_.next_io_id(); }

  // Power loss: builds the crash state on the media (see the essay), records
  // a crash event and returns the choices made. Call it from outside any
  // task, once; the SimDisk accepts no IO afterwards and its pending
  // completions never run. Requests still in flight are abandoned: their
  // on_complete is never called (their tasks die with the scheduler).
  CrashReport crash(Random& rng, const CrashOptions& options);

  size_t in_flight_count() const { return in_flight_.size(); }
  // Sector versions in the volatile cache.
  size_t cached_version_count() const;
  // How many times each fault was injected by this disk.
  uint64_t fault_count(FaultKind f) const { return fault_counts_[static_cast<size_t>(f)]; }
  const SimDiskOptions& options() const { return options_; }
  // Replaces the fault settings for IO submitted from now on: for tests that
  // drive a fault at a chosen moment (e.g. metadata writes failing after a
  // pool is open). Each fault is still recorded in the trace as it happens.
  void set_faults(const FaultConfig& faults) { options_.faults = faults; }

 private:
  // A request between submit() and completion.
  struct Pending {
    uint64_t io_id = 0;
    IoRequest* req = nullptr;  // owned by the caller; dangling once its task dies in a crash
    IoOp op = IoOp::read;
    bool fua = false;
    bool slow = false;
    Status status;  // not ok: rejected by validate(), completes with this
    uint64_t first_sector = 0;
    uint64_t sector_count = 0;
    SectorBytes data;              // write/discard: the bytes to land
    Nanos submit_time{0};
    uint64_t flush_watermark = 0;  // flush: persist writes with seq <= this
  };
  struct CachedSector {
    uint64_t seq;           // completion order of the write (1, 2, ...)
    uint64_t io_id;
    uint64_t write_first_sector;  // where the write landed, for tear chunks
    uint64_t write_sector_count;
    SectorBytes bytes;
  };

  Nanos draw_latency(IoOp op);
  void complete(uint64_t io_id);
  Status complete_read(Pending& p, TraceEvent& ev);
  Status complete_write(Pending& p, TraceEvent& ev, bool& corrupt_after);
  Status complete_flush(Pending& p, TraceEvent& ev);
  void land_write(const Pending& p, uint64_t first_sector, uint64_t seq);
  void persist_through(uint64_t watermark_seq);
  void inject_bit_flip();
  // Records the crash event: a digest of every choice, and the summary.
  void record_crash(const CrashReport& report);
  void note_fault(TraceEvent& ev, FaultKind f);
  TraceEvent base_event(TraceKind kind, const Pending& p) const;

  Scheduler& sched_;
  DiskMedia& media_;
  IoTrace& trace_;
  SimDiskOptions options_;
  Random rng_;
  uint64_t boot_;
  bool crashed_ = false;
  // Completions capture this flag so that a completion scheduled before the
  // disk died does nothing if it ever runs.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  uint64_t completed_writes_ = 0;  // seq of the newest successful write completion
  std::map<uint64_t, Pending> in_flight_;                      // by io id
  std::map<uint64_t, std::vector<CachedSector>> cache_;        // by sector; versions oldest first
  uint64_t fault_counts_[kFaultKindCount] = {};
};

}  // namespace thinp::sim
