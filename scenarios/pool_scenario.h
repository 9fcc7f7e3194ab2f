// The pool scenario: the whole engine (pool.h) on a simulated disk with
// latency, reordering, a volatile cache and crashes, checked sector by sector
// against a reference model.
//
// Concurrent worker tasks write (partial and whole blocks, FUA sometimes),
// read, discard and flush on a few thins, while a manager task creates,
// snapshots and deletes thins. Each sector written carries the id of the
// write that wrote it, so a read says exactly which write it saw. The model
// keeps, per sector of each thin, what a read may return now and what it may
// return after a crash: the value as of the last completed flush plus every
// value written since (in flight ones included). A boot ends with a crash at
// a random point; after recovery every sector of every thin is read back and
// must be one of the values the model allows, and Pool::check must be
// clean. The last boot closes cleanly and verifies once more.
//
// Deliberate bug: "pool-data-no-fua" writes new data blocks without FUA,
// so a durable mapping can point at data that was lost; the checker must
// catch it on some seeds.
#pragma once

#include <cstdint>

#include "scenarios/scenario.h"

namespace thinp::scenarios {

inline constexpr uint64_t kPoolScenarioDefaultOps = 1200;

ScenarioResult run_pool_scenario(const ScenarioOptions& options);

}  // namespace thinp::scenarios
