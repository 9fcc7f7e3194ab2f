// `thinp sim run` and `thinp sim sweep`: deterministic simulation runs of a
// named scenario (scenarios/scenario.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/size_arg.h"

namespace thinp::tools {

struct SimRunArgs {
  std::string scenario;
  uint64_t seed = 1;
  uint64_t ops = 0;  // 0: the scenario's default
  bool verbose = false;
  std::vector<std::string> bugs;
  std::string save_trace;  // save the run's IO trace here
  uint64_t crash_at = 0;   // a crash point (scenarios with crash points); 0: none
  uint64_t crash_state = 0;
};

struct SimSweepArgs {
  std::string scenario;
  SeedRange seeds;
  uint64_t ops = 0;
  unsigned jobs = 0;  // 0: one per core
  std::vector<std::string> bugs;
};

// `thinp sim crash-sweep`: runs the seed once to count its crash points (the
// scheduler events of its first workload boot), then re-runs it cut at each
// point (every point up to `points`, else `points` evenly spaced), with
// `states` different crash states per point (which unflushed writes are
// kept, dropped or torn), each checked after recovery.
struct SimCrashSweepArgs {
  std::string scenario;
  uint64_t seed = 1;
  uint64_t ops = 0;
  uint64_t points = 200;
  uint64_t states = 2;
  unsigned jobs = 0;
  std::vector<std::string> bugs;
};

// Each returns the process exit code: 0 all passed, 1 a run failed, 2 bad
// arguments (an unknown scenario).
int run_sim_run(const SimRunArgs& args);
int run_sim_sweep(const SimSweepArgs& args);
int run_sim_crash_sweep(const SimCrashSweepArgs& args);
// Re-checks a saved disk trace against the disk model, without re-running.
int run_sim_replay_trace(const std::string& trace_path);

// The command that replays one seed with verbose logging.
std::string replay_command(const std::string& scenario, uint64_t seed, uint64_t ops,
                           const std::vector<std::string>& bugs);

}  // namespace thinp::tools
