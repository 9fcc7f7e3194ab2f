// The list of named scenarios. Add one line per scenario.
#include "scenarios/disk_scenario.h"
#include "scenarios/journal_scenario.h"
#include "scenarios/pool_scenario.h"
#include "scenarios/scenario.h"

namespace thinp::scenarios {

const std::vector<ScenarioInfo>& all_scenarios() {
  static const std::vector<ScenarioInfo> list = {
      {"disk", "simulated disk vs its model: cache, flush/FUA, crashes, swarm faults",
       &run_disk_scenario, kDiskScenarioDefaultOps},
      {"journal",
       "MetadataStore transactions from concurrent tasks, crashes, recovery to a commit prefix",
       &run_journal_scenario, kJournalScenarioDefaultOps},
      {"pool",
       "thins and snapshots under concurrent IO, crashes and recovery, every sector checked "
       "against the model",
       &run_pool_scenario, kPoolScenarioDefaultOps, true},
  };
  return list;
}

const ScenarioInfo* find_scenario(std::string_view name) {
  for (const ScenarioInfo& s : all_scenarios()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace thinp::scenarios
