// The host memory keys of a scenario (ram, swap, overcommit_memory): their
// defaults, their bounds and the resolved-scenario JSON (vfio-uapi.md §10,
// docs/scenario.md).
#include <gtest/gtest.h>

#include <string>

#include "report/report.h"
#include "scenario_helpers.h"
#include "sim/scenario.h"

namespace vfiomm::sim {
namespace {

using report::scenarioToJson;

const char* const kBase = R"(name: t
devices:
  - name: d
    bars:
      - {index: 0, size: 16M, type: mem32}
processes:
  - name: p
    open: [d]
    mappings:
      - {name: m0, device: d, bar: 0}
phases:
  - name: touch
    threads:
      - {process: p, cpu: 0}
)";

TEST(ScenarioMemory, DefaultsAreA64GHostWith8GSwapInHeuristicMode) {
  const Scenario sc = parseScenario(kBase, "t.yaml");
  EXPECT_EQ(sc.memory.ramBytes, 64ULL << 30);
  EXPECT_EQ(sc.memory.swapBytes, 8ULL << 30);
  EXPECT_EQ(sc.memory.overcommitMemory, OvercommitMode::kGuess);
  const auto j = scenarioToJson(sc);
  EXPECT_EQ(j["ram"], 64ULL << 30);
  EXPECT_EQ(j["swap"], 8ULL << 30);
  EXPECT_EQ(j["overcommit_memory"], 0U);
}

TEST(ScenarioMemory, KeysAreParsedAndShownResolved) {
  const Scenario sc =
      parseScenario(std::string(kBase) + "ram: 768M\nswap: 256M\novercommit_memory: 2\n", "t.yaml");
  EXPECT_EQ(sc.memory.ramBytes, 768ULL << 20);
  EXPECT_EQ(sc.memory.swapBytes, 256ULL << 20);
  EXPECT_EQ(sc.memory.overcommitMemory, OvercommitMode::kNever);
  const auto j = scenarioToJson(sc);
  EXPECT_EQ(j["ram"], 768ULL << 20);
  EXPECT_EQ(j["swap"], 256ULL << 20);
  EXPECT_EQ(j["overcommit_memory"], 2U);
}

TEST(ScenarioMemory, BadValuesAreRefusedWithTheirPlace) {
  EXPECT_EQ(scenarioErrorOf(std::string(kBase) + "overcommit_memory: 3\n"),
            "bad.yaml:15:20: overcommit_memory must be at most 2");
  EXPECT_EQ(scenarioErrorOf(std::string(kBase) + "ram: 1K\n"),
            "bad.yaml:15:6: ram must be at least 4K");
  EXPECT_NE(scenarioErrorOf(std::string(kBase) + "swap: lots\n").find("swap must be a size"),
            std::string::npos);
}

}  // namespace
}  // namespace vfiomm::sim
