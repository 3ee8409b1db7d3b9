// Scenario devices taken whole from the catalog (`model:`) or from a
// config-space dump (`config_dump:` + `resource:`), docs/devices.md.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "bound_context.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "source_dir.h"

namespace vfiomm::sim {
namespace {

std::string refusal(const std::string& yaml, const std::string& file = "s.yaml") {
  try {
    parseScenario(yaml, file);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "accepted";
}

const char* const kIvshmem = R"(name: shm
cpus: 2
devices:
  - name: shm
    model: ivshmem-64m
  - name: edu
    model: edu
processes:
  - name: app
    open: [shm, edu]
    mappings:
      - {name: mem, device: shm, bar: 2, length: 4M}
      - {name: regs, device: edu, bar: 0}
phases:
  - name: touch
    threads:
      - {name: t0, process: app, cpu: 0, pattern: sequential, stride: 4K}
  - name: d3
    events:
      - {type: d3hot, device: edu, process: app}
)";

TEST(ScenarioDevices, ModelComesWholeFromTheCatalogAndRuns) {
  testing::BoundContext bound;
  const Scenario sc = parseScenario(kIvshmem, "shm.yaml");
  const DeviceDef& shm = *sc.device("shm");
  ASSERT_TRUE(shm.hardware.has_value());
  EXPECT_EQ(shm.model, "ivshmem-64m");
  EXPECT_EQ(shm.hardware->deviceId, 0x1110);
  ASSERT_NE(shm.bar(2), nullptr);
  EXPECT_EQ(shm.bar(2)->size, 64ULL << 20);
  EXPECT_EQ(shm.bar(2)->kind, BarKind::kMem64);
  EXPECT_FALSE(shm.flr);  // ivshmem has no PCIe capability

  const DesignResult r = runScenario(sc, DesignKind::kHugeFault);
  EXPECT_TRUE(r.setupNotes.empty());
  ASSERT_EQ(r.phases.size(), 2U);
  // 4 MiB of ivshmem memory and 1 MiB of edu registers, one word a page.
  EXPECT_EQ(r.phases[0].m.accesses, (4U << 20) / 4096 + (1U << 20) / 4096);
  EXPECT_EQ(r.phases[0].m.sigbus, 0U);
  // edu has no PM capability: the D3hot event cannot be asked for.
  ASSERT_EQ(r.phases[1].notes.size(), 1U);
  EXPECT_NE(r.phases[1].notes[0].find("EINVAL"), std::string::npos) << r.phases[1].notes[0];
}

TEST(ScenarioDevices, BadModelKeysAreRefusedWithTheScenarioLine) {
  testing::BoundContext bound;
  std::string unknown = kIvshmem;
  unknown.replace(unknown.find("model: edu"), 10, "model: nope");
  EXPECT_NE(refusal(unknown).find("s.yaml:7:12: no device 'nope' in the catalog"),
            std::string::npos)
      << refusal(unknown);
  EXPECT_NE(refusal(unknown).find("edu, ivshmem-1g"), std::string::npos) << refusal(unknown);
  std::string lone = kIvshmem;
  lone.replace(lone.find("model: edu"), 10, "resource: x");
  EXPECT_NE(refusal(lone).find("s.yaml:7:15: resource goes with config_dump"), std::string::npos)
      << refusal(lone);
  std::string bars = kIvshmem;
  bars.replace(bars.find("    model: edu"), 14, "    model: edu\n    bars: []");
  EXPECT_NE(refusal(bars).find("s.yaml:8:11: 'bars' comes from the device's model or dump"),
            std::string::npos)
      << refusal(bars);
}

TEST(ScenarioDevices, ConfigDumpIsLoadedRelativeToTheScenarioAndItsErrorsShown) {
  testing::BoundContext bound;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "vfiomm-scenario-dump";
  std::filesystem::create_directories(dir);
  const std::string devices = test::sourceDir() + "/devices/dumps/";
  std::filesystem::copy_file(devices + "edu.resource", dir / "edu.resource",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "bad.lspci") << "00: 34 12 e8 11\n";
  const std::string scenario = (dir / "s.yaml").string();
  const std::string yaml =
      "name: d\ndevices:\n  - name: edu\n    config_dump: bad.lspci\n"
      "    resource: edu.resource\nprocesses:\n  - {name: app, open: [edu]}\n"
      "phases:\n  - name: reset\n    events:\n"
      "      - {type: reset, device: edu, process: app}\n";
  const std::string why = refusal(yaml, scenario);
  EXPECT_EQ(why.find(scenario + ":4:18: "), 0U) << why;
  EXPECT_NE(why.find((dir / "bad.lspci").string() + ":1: 4 bytes in the row"), std::string::npos)
      << why;

  std::filesystem::copy_file(devices + "edu.lspci", dir / "good.lspci",
                             std::filesystem::copy_options::overwrite_existing);
  std::string good = yaml;
  good.replace(good.find("bad.lspci"), 9, "good.lspci");
  const Scenario sc = parseScenario(good, scenario);
  ASSERT_TRUE(sc.devices[0].hardware.has_value());
  EXPECT_EQ(sc.devices[0].hardware->vendorId, 0x1234);
  EXPECT_EQ(sc.devices[0].bar(0)->size, 1ULL << 20);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vfiomm::sim
