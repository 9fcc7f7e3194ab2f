// The "disk" scenario: the simulated disk checked against its own model.
//
// Before any engine code is trusted to the simulator, the simulator itself
// must be shown to keep the device contract, and the checker shown to catch
// a disk that does not. One run, from its seed: a disk geometry, a swarm
// fault configuration and crash options; several concurrent tasks issuing
// random reads, writes, FUA writes, discards and flushes through the
// BlockDevice API; crashes at random points (scheduler torn down,
// SimDisk::crash(), a new SimDisk over the same media); after each reboot a
// scan of the whole device. Every read is checked against
// models/disk_model.h, which is fed the disk's trace as it happens.
#pragma once

#include <cstdint>
#include <string>

#include "engine/base/status.h"
#include "models/disk_model.h"
#include "scenarios/scenario.h"
#include "sim/trace.h"

namespace thinp::scenarios {

inline constexpr uint64_t kDiskScenarioDefaultOps = 1200;

// Runs one seed. Recognised bugs: "disk-flush-noop" (FLUSH makes nothing
// durable) and "disk-hidden-lost-write" (lost writes missing from the trace,
// so the model's exact accounting of silent faults is put to the test). The
// digest covers every trace event and the model's counts.
ScenarioResult run_disk_scenario(const ScenarioOptions& options);

// The same run, keeping every trace event and saving the trace to
// `trace_path` at the end (pass or fail) for replay_disk_trace. The trace
// costs memory in proportion to the run; run_disk_scenario keeps none.
ScenarioResult run_disk_scenario_traced(const ScenarioOptions& options,
                                        const std::string& trace_path);

// Forwards one trace event to the model. Requests the disk rejected at
// submission (invalid_argument) are not part of the contract and are
// skipped. A failure means the event itself shows the disk breaking the
// contract (a read returning a value the model does not allow, corruption of
// a value the media should not hold).
Status feed_disk_model(models::DiskModel& model, uint32_t sector_bytes, const sim::TraceEvent& ev);

// Re-checks a saved trace: feeds every event to a fresh model (geometry from
// the first boot event) and checks each successful read's returned hashes.
// Returns the model's counts, or the first violation.
Result<models::DiskModelStats> replay_disk_trace(const sim::LoadedTrace& trace);

}  // namespace thinp::scenarios
