// What the scenario tests share: the error a scenario text is refused
// with, a one-BAR scenario to build texts on, and a run's phase by name.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "sim/runner.h"
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

// One process maps a 64 KiB BAR and touches it once, in parts, so a test
// can put other mappings between the head (which ends at `mappings:`) and
// the tail (the phases), or append keys to the whole (14 lines).
inline const std::string kOneBarHead = R"(name: p
devices:
  - name: d
    bars:
      - {index: 0, size: 64K, type: mem32}
processes:
  - name: p
    open: [d]
    mappings:
)";
inline const std::string kOneBarTail = R"(phases:
  - name: touch
    threads:
      - {process: p, cpu: 0}
)";
inline const std::string kOneBarScenario =
    kOneBarHead + "      - {name: m, device: d, bar: 0}\n" + kOneBarTail;

// The phase of `r` called `name`; a test failure and an empty phase when
// there is none.
inline const PhaseResult& phaseNamed(const DesignResult& r, const std::string& name) {
  for (const PhaseResult& p : r.phases)
    if (p.name == name) return p;
  ADD_FAILURE() << "no phase " << name;
  static const PhaseResult kNone;
  return kNone;
}

}  // namespace vfiomm::sim
