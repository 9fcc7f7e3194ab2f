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
};

struct SimSweepArgs {
  std::string scenario;
  SeedRange seeds;
  uint64_t ops = 0;
  unsigned jobs = 0;  // 0: one per core
  std::vector<std::string> bugs;
};

// Each returns the process exit code: 0 all passed, 1 a run failed, 2 bad
// arguments (an unknown scenario).
int run_sim_run(const SimRunArgs& args);
int run_sim_sweep(const SimSweepArgs& args);
// Re-checks a saved disk trace against the disk model, without re-running.
int run_sim_replay_trace(const std::string& trace_path);

// The command that replays one seed with verbose logging.
std::string replay_command(const std::string& scenario, uint64_t seed, uint64_t ops,
                           const std::vector<std::string>& bugs);

}  // namespace thinp::tools
