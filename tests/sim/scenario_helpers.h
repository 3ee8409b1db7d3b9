// What the scenario tests share: the error a scenario text is refused with.
#pragma once

#include <string>

#include "sim/scenario.h"

namespace vfiomm::sim {

// The ScenarioError message parseScenario() gives `yaml` read as `file`,
// or "(accepted)".
inline std::string scenarioErrorOf(const std::string& yaml, const std::string& file = "bad.yaml") {
  try {
    parseScenario(yaml, file);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace vfiomm::sim
