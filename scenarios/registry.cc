// The list of named scenarios. Add one line per scenario.
#include "scenarios/scenario.h"

namespace thinp::scenarios {

const std::vector<ScenarioInfo>& all_scenarios() {
  static const std::vector<ScenarioInfo> list = {
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
