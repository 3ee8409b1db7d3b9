// The scenario side of issue 14's last pieces: the `proposals:` key that
// turns on the 2026 dma-buf proposals (dma-mapping.md §4.4, not merged) on
// scenarios/bar-mmap-dmabuf.yaml, and anonymous memory (host RAM) as a DMA
// target on scenarios/dma-host-ram.yaml (docs/scenario.md "DMA path").
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "report/report.h"
#include "scenario_helpers.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "source_dir.h"

namespace vfiomm::sim {
namespace {

Scenario shipped(const std::string& name) {
  return loadScenario(test::sourceDir() + "/scenarios/" + name + ".yaml");
}

TEST(ScenarioProposals, KeyIsCheckedAndEchoed) {
  const Scenario sc = parseScenario(
      kOneBarScenario + "proposals: [bar-mmap-dmabuf, dmabuf-mmap-revoke]\n", "p.yaml");
  EXPECT_EQ(sc.proposals,
            (std::vector<Proposal>{Proposal::kBarMmapDmabuf, Proposal::kDmabufMmapRevoke}));
  EXPECT_TRUE(parseScenario(kOneBarScenario, "p.yaml").proposals.empty());
  EXPECT_EQ(scenarioErrorOf(kOneBarScenario + "proposals: [bar-mmap-dmabuf, tph]\n"),
            "bad.yaml:15:30: unknown proposal 'tph' (known: dmabuf-mmap-revoke, bar-mmap-dmabuf)");
  EXPECT_EQ(scenarioErrorOf(kOneBarScenario + "proposals: [bar-mmap-dmabuf, bar-mmap-dmabuf]\n"),
            "bad.yaml:15:30: proposal 'bar-mmap-dmabuf' is listed twice");
  EXPECT_EQ(report::scenarioToJson(sc)["proposals"].dump(),
            R"(["bar-mmap-dmabuf","dmabuf-mmap-revoke"])");
}

// DMABUF-07's second proposal through a scenario: the 4 MiB BAR mapping
// faults through the dma-buf (1,024 4 KiB inserts where huge-fault alone
// makes two 2 MiB ones), the MEM clear zaps it through the dma-buf's address
// space (1,024 entries), the touches while decode is off SIGBUS, and after
// MEM=1 the mapping faults back in. Without the key the design's own huge
// faults are back.
TEST(ScenarioProposals, DMABUF_07_BarMmapDmabufScenario) {
  Scenario sc = shipped("bar-mmap-dmabuf");
  const DesignResult on = runScenario(sc, DesignKind::kHugeFault);
  EXPECT_EQ(on.profile, "linux-6.19");
  const Metrics& touch = phaseNamed(on, "touch").m;
  EXPECT_EQ(touch.pte, 1024U);
  EXPECT_EQ(touch.pmd, 0U);
  const Metrics& clear = phaseNamed(on, "mem-clear").m;
  EXPECT_EQ(clear.zaps, 1U);
  EXPECT_EQ(clear.zappedEntries, 1024U);
  EXPECT_EQ(phaseNamed(on, "touch-while-off").m.sigbus, 4U);
  const Metrics& again = phaseNamed(on, "touch-again").m;
  EXPECT_EQ(again.sigbus, 0U);
  EXPECT_EQ(again.pte, 1024U);
  EXPECT_EQ(on.total.violations, 0U);
  EXPECT_EQ(on.total.dmaViolations, 0U);

  sc.proposals.clear();
  const DesignResult off = runScenario(sc, DesignKind::kHugeFault);
  EXPECT_EQ(phaseNamed(off, "touch").m.pte, 0U);
  EXPECT_EQ(phaseNamed(off, "touch").m.pmd, 2U);
}

// Host RAM as a DMA target: type1 pins and charges the anonymous pages to
// the mm's locked_vm, iommufd's IOAS_MAP (the dma-buf path) to the user's
// (IOPT_PAGES_ACCOUNT_USER, drivers/iommu/iommufd/pages.c); on both the
// second map goes past RLIMIT_MEMLOCK, 8 MiB: ENOMEM. The NIC's two
// accesses complete with no invariant-7 violation, and after the unmap the
// IOVA faults.
TEST(ScenarioHostRam, AnonymousMappingIsADmaTarget) {
  Scenario sc = shipped("dma-host-ram");
  for (DmaPath path : {DmaPath::kVaddr, DmaPath::kDmaBuf}) {
    SCOPED_TRACE(dmaPathName(path));
    sc.dmaPath = path;
    const DesignResult r = runScenario(sc, DesignKind::kHugeFault);
    EXPECT_TRUE(r.setupNotes.empty());
    EXPECT_TRUE(phaseNamed(r, "dma-map").notes.empty());
    EXPECT_EQ(phaseNamed(r, "dma-map").m.iopte4k, 1024U);
    const PhaseResult& dma = phaseNamed(r, "nic-dma");
    EXPECT_TRUE(dma.notes.empty());
    EXPECT_EQ(dma.m.dmaAccesses, 2U);
    EXPECT_EQ(dma.m.dmarFaults, 0U);
    const PhaseResult& over = phaseNamed(r, "over-memlock");
    ASSERT_EQ(over.notes.size(), 1U);
    EXPECT_EQ(over.notes[0], "line 38: dma-map returned ENOMEM");
    // type1 charges each batch before it maps it; iommufd maps the area,
    // then charges its pins and unmaps it again (pfn_reader_update_pinned()
    // after the last batch_to_domain()).
    EXPECT_EQ(over.m.iommuMaps, path == DmaPath::kVaddr ? 0U : 1U);
    EXPECT_EQ(phaseNamed(r, "unmap").m.dmarFaults, 1U);
    EXPECT_EQ(r.total.dmaViolations, 0U);
    EXPECT_FALSE(r.failed);
  }
}

// A process's `memlock` and `cap_ipc_lock` lift the limit on both paths:
// the map that went past 8 MiB above succeeds.
TEST(ScenarioHostRam, MemlockAndCapIpcLockLiftTheLimit) {
  for (const bool cap : {false, true}) {
    Scenario sc = shipped("dma-host-ram");
    if (cap)
      sc.processes[0].capIpcLock = true;
    else
      sc.processes[0].memlock = 16U << 20;
    for (DmaPath path : {DmaPath::kVaddr, DmaPath::kDmaBuf}) {
      SCOPED_TRACE(fmt::format("cap {} {}", cap, dmaPathName(path)));
      sc.dmaPath = path;
      const DesignResult r = runScenario(sc, DesignKind::kHugeFault);
      EXPECT_TRUE(phaseNamed(r, "over-memlock").notes.empty());
      EXPECT_EQ(phaseNamed(r, "over-memlock").m.iopte2m, 6U) << "12 MiB at a 2 MiB IOVA";
    }
  }
}

TEST(ScenarioHostRam, MemlockAndCapIpcLockAreCheckedAndEchoed) {
  const auto withProcessKeys = [](const std::string& keys) {
    std::string head = kOneBarHead;
    head.replace(head.find("    open: [d]"), 0, keys);
    return head + "      - {name: m, device: d, bar: 0}\n" + kOneBarTail;
  };
  Scenario sc =
      parseScenario(withProcessKeys("    memlock: 1G\n    cap_ipc_lock: true\n"), "p.yaml");
  EXPECT_EQ(sc.processes[0].memlock, 1U << 30);
  EXPECT_TRUE(sc.processes[0].capIpcLock);
  EXPECT_EQ(report::scenarioToJson(sc)["processes"][0]["memlock"].dump(), "1073741824");
  EXPECT_EQ(report::scenarioToJson(sc)["processes"][0]["cap_ipc_lock"].dump(), "true");
  sc = parseScenario(withProcessKeys("    memlock: unlimited\n"), "p.yaml");
  EXPECT_EQ(sc.processes[0].memlock, UINT64_MAX);
  EXPECT_EQ(report::scenarioToJson(sc)["processes"][0]["memlock"].dump(), "\"unlimited\"");
  sc = parseScenario(kOneBarScenario, "p.yaml");
  EXPECT_EQ(sc.processes[0].memlock, 8U << 20) << "the kernel's MLOCK_LIMIT";
  EXPECT_FALSE(sc.processes[0].capIpcLock);
  EXPECT_EQ(scenarioErrorOf(withProcessKeys("    memlock: lots\n")),
            "bad.yaml:8:14: memlock must be a size (e.g. 64K, 16G) or unlimited");
  EXPECT_EQ(scenarioErrorOf(withProcessKeys("    cap_ipc_lock: maybe\n")),
            "bad.yaml:8:19: cap_ipc_lock must be true or false, not 'maybe'");
}

TEST(ScenarioHostRam, AnonymousMappingIsChecked) {
  const Scenario sc =
      parseScenario(kOneBarHead + "      - {name: ram, anonymous: 2M}\n" + kOneBarTail, "p.yaml");
  ASSERT_EQ(sc.processes[0].mappings.size(), 1U);
  EXPECT_TRUE(sc.processes[0].mappings[0].anonymous);
  EXPECT_EQ(sc.processes[0].mappings[0].length, 2U << 20);
  EXPECT_EQ(scenarioErrorOf(kOneBarHead + "      - {name: ram, anonymous: 2M, device: d}\n" +
                            kOneBarTail),
            "bad.yaml:10:44: an anonymous mapping has no device");
  EXPECT_EQ(scenarioErrorOf(kOneBarHead + "      - {anonymous: 2M}\n" + kOneBarTail),
            "bad.yaml:10:9: an anonymous mapping needs a name");
  EXPECT_EQ(scenarioErrorOf(kOneBarHead + "      - {name: ram, anonymous: 5000}\n" + kOneBarTail),
            "bad.yaml:10:32: anonymous must be a non-zero multiple of 4K");
}

}  // namespace
}  // namespace vfiomm::sim
