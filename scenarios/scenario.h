// A named simulation scenario: one deterministic run from a seed.
//
// `thinp sim run|sweep --scenario NAME` looks scenarios up here. Each run
// builds its own simulated world from the seed (scheduler, disks, engine),
// drives a workload with crashes, checks the result against a model, and
// returns a ScenarioResult. Runs share no state, so a sweep may run several
// at once on different threads.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace thinp::scenarios {

struct ScenarioOptions {
  uint64_t seed = 1;
  uint64_t ops = 0;             // workload length; 0 means the scenario's default
  bool verbose = false;         // log every event to `log`
  std::ostream* log = nullptr;  // where verbose output goes (nullptr: nowhere)
  // Deliberate bugs to inject, by name (e.g. "disk-flush-noop"), so tests can
  // prove the checkers fail. Unknown names are an error reported in `failure`.
  std::vector<std::string> bugs;
  // When set, the scenario keeps every trace event and saves the trace here
  // (pass or fail) for `thinp sim replay --trace`. Costs memory in proportion
  // to the run. Scenarios without a trace format report that in `failure`.
  std::string trace_path;
  // Crash sweeps (`thinp sim crash-sweep`), for scenarios that support them
  // (ScenarioInfo::crash_points): the run is one workload boot that loses
  // power after exactly this many scheduler events (each event is a crash
  // point; UINT64_MAX: at the end of its workload), the fate of every
  // unflushed write drawn from `crash_state`, then recovery is checked and
  // the pool closed. 0: the scenario's own plan of boots and crashes.
  uint64_t crash_after_events = 0;
  uint64_t crash_state = 0;
};

struct ScenarioResult {
  bool passed = false;
  // A running digest of everything the run did (every IO event and check):
  // the same seed gives the same digest on every run and machine.
  uint64_t digest = 0;
  // One line of counts, e.g. "ops=2000 crashes=4 reads_checked=812".
  std::string summary;
  // Why the run failed (empty when passed): the first broken check, with
  // enough context to start debugging.
  std::string failure;
  // Scenarios with crash points: how many scheduler events the first
  // workload boot ran; with crash_after_events = UINT64_MAX (a crash-sweep
  // run that is never cut) that is every crash point of the seed.
  uint64_t crash_points = 0;
};

using ScenarioFn = ScenarioResult (*)(const ScenarioOptions&);

struct ScenarioInfo {
  std::string_view name;
  std::string_view description;
  ScenarioFn run;
  uint64_t default_ops;
  bool crash_points = false;  // honours ScenarioOptions::crash_after_events
};

// Every scenario, in a fixed order.
const std::vector<ScenarioInfo>& all_scenarios();
// nullptr if there is no scenario of that name.
const ScenarioInfo* find_scenario(std::string_view name);

}  // namespace thinp::scenarios
