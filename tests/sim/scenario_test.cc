// Scenario files: the built-in default equals scenarios/gpu-passthrough.yaml,
// every shipped scenario parses, and bad input is refused with
// file:line:column before anything runs.
#include "sim/scenario.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "base/byte_format.h"
#include "report/report.h"
#include "scenario_helpers.h"
#include "source_dir.h"

namespace vfiomm::sim {
namespace {

using report::scenarioToJson;

std::string sourceDir() { return test::sourceDir(); }

// A minimal valid scenario the error tests start from (line numbers below
// count from its first line).
const char* const kGood = R"(name: t
devices:
  - name: d
    bars:
      - {index: 0, size: 16M, type: mem32}
      - {index: 2, size: 1G, type: mem64, prefetchable: true}
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

TEST(Scenario, DefaultIsTheShippedFile) {
  const Scenario builtin = defaultScenario();
  const Scenario file = loadScenario(sourceDir() + "/scenarios/gpu-passthrough.yaml");
  auto a = scenarioToJson(builtin);
  auto b = scenarioToJson(file);
  a.erase("file");
  b.erase("file");
  EXPECT_EQ(a.dump(), b.dump());
}

TEST(Scenario, DefaultMatchesTheIssue) {
  const Scenario sc = defaultScenario();
  ASSERT_EQ(sc.devices.size(), 1U);
  const DeviceDef& gpu = sc.devices[0];
  ASSERT_NE(gpu.bar(0), nullptr);
  EXPECT_EQ(gpu.bar(0)->size, 16ULL << 20);
  EXPECT_EQ(gpu.bar(0)->kind, BarKind::kMem32);
  EXPECT_EQ(gpu.bar(1)->size, 32ULL << 30);
  EXPECT_EQ(gpu.bar(1)->kind, BarKind::kMem64);
  EXPECT_TRUE(gpu.bar(1)->prefetchable);
  EXPECT_EQ(gpu.bar(3)->size, 32ULL << 20);
  EXPECT_TRUE(gpu.bar(3)->prefetchable);
  // Aligned to min(size, 1 GiB).
  ASSERT_EQ(sc.processes.size(), 1U);
  EXPECT_EQ(sc.processes[0].mappings[0].align, 16ULL << 20);
  EXPECT_EQ(sc.processes[0].mappings[1].align, 1ULL << 30);
  EXPECT_EQ(sc.processes[0].mappings[2].align, 32ULL << 20);
  ASSERT_EQ(sc.phases.size(), 6U);
  EXPECT_EQ(sc.phases[0].name, "touch");
  // The VM boot DMA-maps every BAR mapping (issue 14).
  ASSERT_EQ(sc.phases[1].events.size(), 3U);
  for (const EventDef& e : sc.phases[1].events) EXPECT_EQ(e.kind, EventKind::kDmaMap);
  EXPECT_EQ(sc.phases[2].events.size(), 2U);
  EXPECT_EQ(sc.phases[4].events[0].kind, EventKind::kReset);
  EXPECT_EQ(sc.phases[4].threads[0].program.targets, std::vector<std::string>{"bar1"});
}

TEST(Scenario, EveryShippedScenarioParses) {
  for (const char* name :
       {"gpu-passthrough", "vm-boot-bar-sizing", "sriov-nic-hot-reset", "fork-live-bar",
        "unaligned-64g-bar", "shared-bar-reset", "runtime-pm-and-mm", "dma-map-32g-bar",
        "dma-peer-after-mem-clear", "check/fork-vs-disable"}) {
    SCOPED_TRACE(name);
    EXPECT_NO_THROW(loadScenario(sourceDir() + "/scenarios/" + name + ".yaml"));
  }
}

TEST(Scenario, GoodBaseParses) { EXPECT_EQ(scenarioErrorOf(kGood), "(accepted)"); }

TEST(Scenario, Sizes) {
  EXPECT_EQ(parseSize("4K"), 4096U);
  EXPECT_EQ(parseSize("32G"), 32ULL << 30);
  EXPECT_EQ(parseSize("2MiB"), 2ULL << 20);
  EXPECT_EQ(parseSize("0x1000"), 4096U);
  EXPECT_FALSE(parseSize("4Q"));
  EXPECT_FALSE(parseSize("-1"));
  EXPECT_EQ(formatBytes(32ULL << 30), "32G");
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(ScenarioErrors, UnknownTopLevelKey) {
  EXPECT_EQ(
      scenarioErrorOf(std::string(kGood) + "colour: blue\n"),
      "bad.yaml:16:1: unknown key 'colour' in the scenario (expected one of: name, description, "
      "cpus, profile, dma_path, proposals, thp, ram, swap, overcommit_memory, cost_model, tlb, "
      "devices, "
      "processes, "
      "phases)");
}

TEST(ScenarioErrors, UnknownBarKey) {
  EXPECT_EQ(scenarioErrorOf(replace(kGood, "type: mem32}", "type: mem32, cacheable: true}")),
            "bad.yaml:5:44: unknown key 'cacheable' in a BAR (expected one of: index, size, type, "
            "prefetchable)");
}

TEST(ScenarioErrors, NonPowerOfTwoBar) {
  EXPECT_EQ(scenarioErrorOf(replace(kGood, "size: 16M", "size: 12M")),
            "bad.yaml:5:26: BAR size 12M is not a power of two");
}

TEST(ScenarioErrors, WrongType) {
  EXPECT_EQ(scenarioErrorOf(replace(kGood, "{process: p, cpu: 0}", "{process: p, cpu: first}")),
            "bad.yaml:15:27: cpu must be a non-negative integer, not 'first'");
  EXPECT_EQ(scenarioErrorOf(replace(kGood, "prefetchable: true", "prefetchable: maybe")),
            "bad.yaml:6:57: prefetchable must be true or false, not 'maybe'");
}

TEST(ScenarioErrors, MappingPastTheBar) {
  EXPECT_EQ(scenarioErrorOf(replace(kGood, "bar: 0}", "bar: 0, offset: 8M, length: 16M}")),
            "bad.yaml:11:59: mapping 'm0' (16M at 8M) runs past the end of BAR 0 (16M)");
}

TEST(ScenarioErrors, UndefinedNames) {
  EXPECT_EQ(scenarioErrorOf(replace(kGood, "device: d, bar: 0", "device: e, bar: 0")),
            "bad.yaml:11:28: undefined device 'e'");
  EXPECT_EQ(scenarioErrorOf(replace(kGood, "{process: p, cpu: 0}", "{process: q, cpu: 0}")),
            "bad.yaml:15:19: undefined process 'q'");
  EXPECT_EQ(scenarioErrorOf(
                replace(kGood, "{process: p, cpu: 0}", "{process: p, cpu: 0, targets: [m9]}")),
            "bad.yaml:15:40: process 'p' has no mapping 'm9'");
  EXPECT_EQ(scenarioErrorOf(replace(kGood, "bar: 0}", "bar: 3}")),
            "bad.yaml:11:36: device 'd' has no BAR 3");
}

TEST(ScenarioErrors, BadEvent) {
  EXPECT_EQ(scenarioErrorOf(std::string(kGood) +
                            "  - name: x\n    events:\n      - {type: explode, device: d}\n"),
            "bad.yaml:18:16: unknown event type 'explode' (expected one of: memory-disable, "
            "memory-enable, "
            "d3hot, d0, reset, hot-reset, low-power-entry, low-power-exit, munmap, mprotect, "
            "mremap, fork, exit, dma-map, dma-unmap, dma)");
  EXPECT_EQ(scenarioErrorOf(std::string(kGood) +
                            "  - name: x\n    events:\n      - {type: exit, process: p}\n"
                            "  - name: y\n    threads:\n      - {process: p}\n"),
            "bad.yaml:21:19: process 'p' has exited");
}

// A thread may issue device events of its own process instead of
// accesses (a second syscall-issuing thread), and nothing else.
TEST(ScenarioErrors, ThreadEvents) {
  const std::string events = "  - name: x\n    threads:\n      - {process: p, events: [%s]}\n";
  auto with = [&](const std::string& event) {
    return std::string(kGood) + replace(events, "%s", event);
  };
  EXPECT_EQ(scenarioErrorOf(with("{type: memory-disable, device: d}")), "(accepted)");
  EXPECT_EQ(scenarioErrorOf(with("{type: fork, process: p, child: c}")),
            "bad.yaml:18:31: a thread issues device events only, not 'fork'");
  EXPECT_EQ(scenarioErrorOf(std::string(kGood) +
                            "  - name: x\n    threads:\n      - {process: p, passes: 2, "
                            "events: [{type: d3hot, device: d}]}\n"),
            "bad.yaml:18:30: a thread with events makes no accesses: 'passes' is not for it");
}

TEST(ScenarioErrors, CpuOutOfRange) {
  EXPECT_EQ(scenarioErrorOf(replace(kGood, "{process: p, cpu: 0}", "{process: p, cpu: 9}")),
            "bad.yaml:15:27: cpu 9 does not exist (the scenario has 4 cpus)");
}

TEST(ScenarioErrors, YamlSyntax) {
  const std::string e = scenarioErrorOf("name: [unclosed\n");
  EXPECT_EQ(e.rfind("bad.yaml:", 0), 0U) << e;
}

TEST(ScenarioErrors, UnknownCostKey) {
  EXPECT_EQ(scenarioErrorOf(std::string(kGood) + "cost_model: {warp_ns: 3}\n").substr(0, 45),
            "bad.yaml:16:14: unknown key 'warp_ns' in cost");
}

TEST(Scenario, TlbOverrideReplacesOnlyTheArraysGiven) {
  const Scenario sc =
      parseScenario(std::string(kGood) + "tlb: {4k: {entries: 64, ways: 4}}\n", "t.yaml");
  EXPECT_EQ(sc.tlb.page4k.entries, 64U);
  EXPECT_EQ(sc.tlb.page4k.ways, 4U);
  const TlbGeometry defaults;
  EXPECT_EQ(sc.tlb.page2m.entries, defaults.page2m.entries);
  EXPECT_EQ(sc.tlb.page1g.ways, defaults.page1g.ways);
  // The resolved scenario in --json carries the whole geometry.
  const auto j = scenarioToJson(sc);
  EXPECT_EQ(j["tlb"]["4k"]["entries"], 64);
  EXPECT_EQ(j["tlb"]["1g"]["entries"], defaults.page1g.entries);
}

TEST(ScenarioErrors, BadTlbGeometry) {
  EXPECT_EQ(
      scenarioErrorOf(std::string(kGood) + "tlb: {4k: {entries: 48, ways: 4}}\n"),
      "bad.yaml:16:11: tlb.4k: entries / ways (the number of sets) must be a whole power of two, "
      "not 48 / 4");
  EXPECT_EQ(scenarioErrorOf(std::string(kGood) + "tlb: {4k: {entries: 64, ways: 0}}\n"),
            "bad.yaml:16:11: tlb.4k: entries and ways must be at least 1");
  EXPECT_EQ(scenarioErrorOf(std::string(kGood) + "tlb: {4k: {entries: 64}}\n"),
            "bad.yaml:16:11: tlb.4k needs entries and ways");
  EXPECT_EQ(scenarioErrorOf(std::string(kGood) + "tlb: {512g: {entries: 1, ways: 1}}\n"),
            "bad.yaml:16:7: unknown key '512g' in tlb (expected one of: 4k, 2m, 1g)");
}

}  // namespace
}  // namespace vfiomm::sim
