// What the simulated disk may do wrong, and how often: the knobs of the fault
// model described at the top of sim/sim_disk.h.
//
// Swarm testing: instead of one fixed mix of faults for every run, each seed
// draws its own FaultConfig (random_swarm_faults), so that some runs see only
// lost writes, some only slow IO, some nothing at all. A mix that switches a
// fault off entirely is what lets the rare interactions of the others show.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/base/random.h"

namespace thinp::sim {

using Nanos = std::chrono::nanoseconds;

// The fault (if any) an IO event carries in the trace.
enum class FaultKind : uint8_t {
  none = 0,
  read_error,   // a read completes with io_error; the caller's buffer is untouched
  write_error,  // a write or flush completes with io_error and changes nothing
  bit_flip,     // one bit of one durable sector flips silently (a "corrupt" event)
  misdirect,    // a write succeeds but lands at another offset
  lost_write,   // a write succeeds but changes nothing
  slow,         // an IO takes slow_factor times its drawn latency
  device_full,  // a write reaching past the full limit fails with no_space
};

inline constexpr size_t kFaultKindCount = static_cast<size_t>(FaultKind::device_full) + 1;

std::string_view fault_kind_name(FaultKind f);
// The inverse of fault_kind_name; nullopt for an unknown name.
std::optional<FaultKind> fault_kind_from_name(std::string_view name);

// Per-IO probabilities of each fault, and the device-full limit. All zero /
// nullopt (the default) is a perfect disk.
struct FaultConfig {
  double read_error = 0;   // per read
  double write_error = 0;  // per write, discard and flush
  double bit_flip = 0;     // per successful write: flip one bit of one durable sector
  double misdirect = 0;    // per successful write
  double lost_write = 0;   // per successful write
  double slow = 0;         // per IO
  uint32_t slow_factor = 50;
  // Device full. A write or discard whose range reaches past this byte
  // offset fails with no_space; reads are unaffected. A fixed boundary (not
  // "space used so far") keeps the fault a pure function of the request, so
  // it survives crashes and reboots without bookkeeping; it models a device
  // whose tail is unusable, e.g. an over-committed thin LUN below us.
  std::optional<uint64_t> full_limit_bytes;

  bool any() const;
  // "read_error=0.01 lost_write=0.002 full@8192" (only the enabled faults), or "none".
  std::string to_string() const;
};

// Draws a swarm configuration: each fault class is on with probability 1/2,
// at a rate between 0.1% and 5% per IO (roughly log-uniform); device full is on with
// probability 1/4, at a sector boundary in the upper half of the device.
FaultConfig random_swarm_faults(Random& rng, uint64_t size_bytes, uint32_t sector_bytes);

// Latency of each IO: uniform in [min, max] for its class, and with
// tail_probability a long tail (multiplied by a uniform factor in
// [2, tail_factor]). A slow fault multiplies again by FaultConfig::slow_factor.
struct LatencyConfig {
  Nanos read_min{Nanos(20'000)};
  Nanos read_max{Nanos(120'000)};
  Nanos write_min{Nanos(30'000)};
  Nanos write_max{Nanos(200'000)};
  Nanos flush_min{Nanos(100'000)};
  Nanos flush_max{Nanos(600'000)};
  double tail_probability = 0.02;
  uint32_t tail_factor = 20;
};

// Deliberate bugs in the disk, switched on by tests to prove that the
// checkers can fail.
struct DiskBugs {
  // FLUSH completes successfully but makes nothing durable.
  bool flush_noop = false;
  // Lost writes happen but the trace does not report them: proves the model
  // accounts for silent faults exactly rather than allowing anything.
  bool hide_lost_writes = false;
};

}  // namespace thinp::sim
