// The "journal" scenario: MetadataStore's transactions against the commit
// prefix oracle, over simulated disks that reorder, stall, fail and lose
// power.
//
// One run, from its seed: a disk geometry and pool layout (journal size,
// cache size, FUA or FLUSH commits), IO latency and a swarm of faults (slow
// IO, and on some seeds read and write errors), and several concurrent tasks
// each running random transactions through MetadataStore: create a thin
// (device-tree entry and an empty mapping tree), map runs of newly allocated
// data, unmap ranges, snapshot a thin (clone its mapping root into a new
// thin), delete a thin, and read-only transactions that are aborted. A
// checkpointing task runs beside them. Each transaction is one commit; the
// model state after it is handed to the CommitOracle (journal_model.h)
// before commit() is called, and its LSN when commit() returns.
//
// Crashes: at random points in virtual time (while commits are in flight)
// the scheduler is torn down and SimDisk::crash() keeps, drops or tears
// each write that was not durable; a new Scheduler and SimDisk over the same
// media reopen the pool, which recovers. Some boots are cut short in the
// middle of the recovery itself. After each successful open the scenario
// reads every thin back (device tree and mapping trees), asks the oracle to
// accept it as a prefix state holding every acknowledged commit, and runs
// MetadataStore::check(), which must find nothing. The run ends with a clean
// close and one more open, verify and check.
//
// An IO error may fail a commit (the store then fails, and the run
// reboots), a checkpoint, a staging read (the transaction is aborted) or an
// open (the run reboots and tries again): the oracle treats a failed commit
// as one that may or may not have reached the disk.
#pragma once

#include <cstdint>

#include "scenarios/scenario.h"

namespace thinp::scenarios {

inline constexpr uint64_t kJournalScenarioDefaultOps = 1200;

// Runs one seed; `options.ops` is the number of transactions attempted.
// Recognised bug: "journal-no-durability" opens the store with
// OpenOptions::unsafe_skip_durability (commits are acknowledged without FUA
// or FLUSH), which the oracle must catch on some seeds. The digest covers the
// disk trace, the recovered states and the counts.
ScenarioResult run_journal_scenario(const ScenarioOptions& options);

}  // namespace thinp::scenarios
