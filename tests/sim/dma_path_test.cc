// The DMA-path dimension of a run (docs/scenario.md "DMA path") on
// scenarios/dma-peer-after-mem-clear.yaml: invariant 7 (no device DMA
// reaches a BAR with its memory decode off) is type1's known hazard on the
// vaddr path and holds on the dma-buf path, where the MEM clear revokes the
// buffer and iommufd unmaps its IOPTEs (dma-mapping.md §2.6, §4.2-§4.3).
#include <gtest/gtest.h>

#include "report/report.h"
#include "scenario_helpers.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "source_dir.h"

namespace vfiomm::sim {
namespace {

using report::formatTable;

DesignResult runOn(DmaPath path) {
  Scenario sc = loadScenario(test::sourceDir() + "/scenarios/dma-peer-after-mem-clear.yaml");
  sc.dmaPath = path;
  return runScenario(sc, DesignKind::kHugeFault);
}

// DMA-14: after MEM=0 the type1 IOPTEs still translate; the NIC's write
// reaches the BAR with decode off, recorded (not refused: the IOMMU cannot
// know), and reported as the hazard rather than failing the run. With
// decode back on the same IOPTEs are harmless again.
TEST(DmaPath, DMA_14_Type1PeerDmaAfterMemClearIsTheInvariant7Hazard) {
  const DesignResult r = runOn(DmaPath::kVaddr);
  EXPECT_EQ(r.profile, "linux-6.12");  // huge-fault's own
  for (const PhaseResult& p : r.phases)
    EXPECT_TRUE(p.notes.empty()) << p.name << ": " << p.notes.front();
  EXPECT_EQ(phaseNamed(r, "peer-write").m.dmaAccesses, 1U);
  const Metrics& clear = phaseNamed(r, "mem-clear").m;
  EXPECT_EQ(clear.zaps, 1U);         // the CPU side is zapped ...
  EXPECT_EQ(clear.dmaAccesses, 1U);  // ... the DMA side is not
  EXPECT_EQ(clear.dmaViolations, 1U);
  EXPECT_EQ(clear.dmarFaults, 0U);
  EXPECT_EQ(phaseNamed(r, "mem-set").m.dmaViolations, 0U);
  EXPECT_EQ(r.total.dmaViolations, 1U);
  EXPECT_EQ(r.total.dmarFaults, 0U);
  EXPECT_FALSE(r.failed);
  const std::string table = formatTable(Scenario{}, {r});
  EXPECT_NE(table.find("1 invariant-7 violations"), std::string::npos) << table;
}

// DMABUF-02/03: the import maps the BAR range with no vaddr lookup and no
// fault (nothing pinned); MEM=0 revokes it and its IOPTEs go, so the write
// is a DMAR fault the NIC sees as -EIO; MEM=1 brings no IOPTE back; unmap +
// map again does.
TEST(DmaPath, DMABUF_03_RevokeMakesPeerDmaADmarFaultUntilRemapped) {
  const DesignResult r = runOn(DmaPath::kDmaBuf);
  EXPECT_EQ(r.profile, kDmaBufProfile);
  EXPECT_EQ(r.dmaPath, DmaPath::kDmaBuf);
  EXPECT_TRUE(r.setupNotes.empty());
  const Metrics& map = phaseNamed(r, "dma-map").m;
  EXPECT_TRUE(phaseNamed(r, "dma-map").notes.empty());
  EXPECT_EQ(map.dmaLookups, 0U);
  EXPECT_EQ(map.faults, 0U);
  EXPECT_GE(map.iopte1g, 1U);  // one 1 GiB IOPTE in every domain of the IOAS
  EXPECT_EQ(map.iopte2m + map.iopte4k, 0U);
  EXPECT_EQ(phaseNamed(r, "peer-write").m.dmaAccesses, 1U);
  const PhaseResult& clear = phaseNamed(r, "mem-clear");
  EXPECT_EQ(clear.m.dmaViolations, 0U);
  EXPECT_EQ(clear.m.dmarFaults, 1U);
  ASSERT_EQ(clear.notes.size(), 1U);
  EXPECT_EQ(clear.notes[0], "line 46: DMA write by nic at IOVA 0x40001000 returned EIO");
  EXPECT_EQ(phaseNamed(r, "mem-set").m.dmarFaults, 1U);
  const PhaseResult& remap = phaseNamed(r, "remap");
  EXPECT_TRUE(remap.notes.empty());
  EXPECT_EQ(remap.m.dmaAccesses, 1U);
  EXPECT_EQ(remap.m.dmarFaults, 0U);
  EXPECT_EQ(r.total.dmaViolations, 0U);
  EXPECT_FALSE(r.failed);
}

// Before 6.19 there is no export: VFIO_DEVICE_FEATURE_DMA_BUF is -ENOTTY,
// a note, and nothing is mapped.
TEST(DmaPath, DMABUF_01_ExportBefore619IsNotedEnotty) {
  Scenario sc = loadScenario(test::sourceDir() + "/scenarios/dma-peer-after-mem-clear.yaml");
  sc.dmaPath = DmaPath::kDmaBuf;
  sc.profile = "linux-6.15";
  const DesignResult r = runScenario(sc, DesignKind::kHugeFault);
  const PhaseResult& map = phaseNamed(r, "dma-map");
  ASSERT_EQ(map.notes.size(), 1U);
  EXPECT_EQ(map.notes[0], "line 39: dma-map returned ENOTTY");
  EXPECT_EQ(map.m.iommuMaps, 0U);
}

TEST(DmaPath, ScenarioKeyIsChecked) {
  const std::string& base = kOneBarScenario;
  EXPECT_EQ(parseScenario(base + "dma_path: dma-buf\n", "p.yaml").dmaPath, DmaPath::kDmaBuf);
  EXPECT_EQ(parseScenario(base, "p.yaml").dmaPath, DmaPath::kVaddr);
  EXPECT_EQ(scenarioErrorOf(base + "dma_path: iommu\n"),
            "bad.yaml:15:11: dma_path must be vaddr or dma-buf, not 'iommu'");
}

}  // namespace
}  // namespace vfiomm::sim
