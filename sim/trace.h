// IoTrace: the record of everything a simulated disk did.
//
// Every request is recorded twice, at submission and at completion, with its
// op, range, flags, virtual times, the flush epoch, content hashes and the
// fault (if any) injected into it. Latent corruption, crashes and reboots are
// events too. A trace therefore says, on its own, what each read was allowed
// to return: models/disk_model.h consumes exactly these events, and a saved
// trace can be replayed through the model without the run that produced it.
//
// Memory is bounded by default: the running digest (engine/base/hash.h) and
// the observer see every event, but the event list itself is kept only when
// TraceOptions::keep_events is set (tests, replays, verbose runs).
//
// One IoTrace outlives the SimDisks of one run (crashes and reboots included),
// so it also hands out the run's io ids: they never repeat across reboots.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/hash.h"
#include "engine/base/status.h"
#include "engine/io/block_device.h"
#include "sim/fault_config.h"

namespace thinp::sim {

enum class TraceKind : uint8_t {
  submit,    // a request entered the disk
  complete,  // a request completed (status and fault say how)
  corrupt,   // latent corruption: a durable sector changed silently
  crash,     // the disk lost power; `note` summarises the crash state chosen
  boot,      // a new SimDisk started over the media
};

std::string_view trace_kind_name(TraceKind k);

struct TraceEvent {
  uint64_t seq = 0;  // position in the trace, assigned by IoTrace::record
  TraceKind kind = TraceKind::submit;
  uint64_t boot = 0;   // which SimDisk (0 = the first) produced the event
  uint64_t io_id = 0;  // the request; corrupt events get their own id
  IoOp op = IoOp::read;
  bool fua = false;
  // The request's range. boot: offset_bytes is the logical sector size and
  // length_bytes the device size, so a saved trace names its geometry.
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  int64_t time_ns = 0;         // virtual time of this event (restarts at each boot)
  int64_t submit_time_ns = 0;  // complete: when the request was submitted
  uint64_t flush_epoch = 0;    // flushes completed successfully before this event
  Errc status = Errc::ok;      // complete: the status delivered to the caller
  FaultKind fault = FaultKind::none;
  // misdirect: the byte offset the write really landed at;
  // corrupt: the byte offset of the corrupted sector.
  uint64_t fault_offset_bytes = 0;
  // Hash of sector_hashes (submit of a write, completion of a read);
  // corrupt: the sector's hash after the flip.
  uint64_t content_hash = 0;
  uint64_t prior_hash = 0;  // corrupt: the sector's hash before the flip
  // One hash per sector: the data of a write or discard (at submit), the data
  // returned by a read (at completion). Empty otherwise.
  std::vector<uint64_t> sector_hashes;
  std::string note;  // free text without newlines (crash summaries)
};

// Hash of a list of sector hashes: what content_hash holds.
uint64_t combine_sector_hashes(const std::vector<uint64_t>& hashes);

// One line, e.g. "17 complete boot=0 io=9 op=write fua=0 off=4096 ...".
// Without sector hashes (for logs; content_hash still summarises them) the
// line says "sectors=N" and cannot be parsed back.
std::string format_event(const TraceEvent& ev, bool with_sector_hashes = true);
// The inverse of format_event.
Result<TraceEvent> parse_event(std::string_view line);

struct TraceOptions {
  bool keep_events = false;  // keep every event in memory (for save() and inspection)
};

class IoTrace {
 public:
  explicit IoTrace(TraceOptions options = {}) : options_(options) {}
  IoTrace(const IoTrace&) = delete;
  IoTrace& operator=(const IoTrace&) = delete;

  // Assigns ev.seq, folds the event into the digest, hands it to the
  // observer, and keeps it if keep_events is set.
  void record(TraceEvent ev);

  // Called with every event as it is recorded (in scheduler context, inside
  // the disk's submit or completion): it must not suspend or submit IO.
  void set_observer(std::function<void(const TraceEvent&)> observer) {
    observer_ = std::move(observer);
  }

  uint64_t digest() const { return digest_.value(); }
  uint64_t event_count() const { return event_count_; }
  // Every event so far; empty unless keep_events.
  const std::vector<TraceEvent>& events() const { return events_; }
  bool keeps_events() const { return options_.keep_events; }

  // io ids are unique for the life of the trace and start at 1.
  uint64_t allocate_io_id() { return next_io_id_++; }
  uint64_t next_io_id() const { return next_io_id_; }

  uint64_t flush_epoch() const { return flush_epoch_; }
  void advance_flush_epoch() { ++flush_epoch_; }
  // The boot counter: begin_boot() returns the new boot's number (0 first).
  uint64_t boot() const { return boot_; }
  uint64_t begin_boot() { return boot_ = boots_started_++; }

  // Writes the kept events to `path`: a header line, one line per event, and
  // a closing "digest <hex> events <n>" line. Requires keep_events.
  // `description` (one line) is written as a comment after the header.
  Status save(const std::string& path, std::string_view description = "") const;

 private:
  TraceOptions options_;
  Digest digest_;
  uint64_t event_count_ = 0;
  uint64_t next_io_id_ = 1;
  uint64_t flush_epoch_ = 0;
  uint64_t boot_ = 0;
  uint64_t boots_started_ = 0;
  std::vector<TraceEvent> events_;
  std::function<void(const TraceEvent&)> observer_;
};

// A trace read back from a file by load_trace.
struct LoadedTrace {
  std::string description;
  std::vector<TraceEvent> events;
  uint64_t digest = 0;  // as saved, and verified against the events
};

// Reads a file written by IoTrace::save. Fails with corruption if a line does
// not parse or the events do not fold to the saved digest.
Result<LoadedTrace> load_trace(const std::string& path);

// The digest a trace of exactly these events would have.
uint64_t digest_of(const std::vector<TraceEvent>& events);

}  // namespace thinp::sim
