// Scenario events dma-map / dma-unmap / dma (docs/scenario.md "DMA"): what
// the parser refuses with file:line (the kernel's EEXIST/EINVAL cases of
// dma-mapping.md §1.4-§1.5, found before anything runs), and what a run
// counts and notes (lookups, faults taken by the DMA map, iommu_map calls,
// IOPTEs by size, device DMA, invariant 7). Named after the conformance IDs
// of dma-mapping.md §8 whose behaviour the scenario reaches.
#include <gtest/gtest.h>

#include <string>

#include "base/byte_units.h"
#include "scenario_helpers.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "trace/trace_log.h"

namespace vfiomm::sim {
namespace {

// A 1 GiB BAR mapped 1 GiB aligned (so huge-fault puts one PUD there), a
// 64 KiB peer, both in the vmm's container; `phases` follows.
std::string withPhases(const std::string& phases, const std::string& profile = "linux-6.15",
                       const std::string& via = "group") {
  return "name: dma\nprofile: " + profile + R"(
devices:
  - name: gpu
    bars:
      - {index: 0, size: 1G, type: mem64, prefetchable: true}
  - name: nic
    bars:
      - {index: 0, size: 64K, type: mem32}
processes:
  - name: vmm
    open:
      - {device: gpu, via: )" +
         via + R"(}
      - {device: nic, via: )" +
         via + R"(}
    mappings:
      - {name: bar, device: gpu, bar: 0}
phases:
)" + phases;
}

const std::string kMap = R"(  - name: boot
    events:
      - {type: dma-map, process: vmm, mapping: bar, iova: 0x40000000}
)";

TEST(DmaScenario, DMA_05_OverlappingIovaIsAFileLineError) {
  const std::string y = withPhases(kMap + R"(  - name: again
    events:
      - {type: dma-map, process: vmm, mapping: bar, offset: 1G, iova: 0x40000000}
)");
  // The offset is checked first: 1G is past the end of the 1 GiB mapping.
  EXPECT_NE(scenarioErrorOf(y).find("bad.yaml:23:"), std::string::npos) << scenarioErrorOf(y);
  const std::string overlap = withPhases(kMap + R"(  - name: again
    events:
      - {type: dma-map, process: vmm, mapping: bar, length: 4K, iova: 0x7ffff000}
)");
  const std::string err = scenarioErrorOf(overlap);
  EXPECT_NE(err.find("bad.yaml:23:"), std::string::npos) << err;
  EXPECT_NE(err.find("overlaps the DMA mapping of 'bar'"), std::string::npos) << err;
  EXPECT_NE(err.find("line 20"), std::string::npos) << err;
  // Adjacent is fine (DMA-05's last clause), and so is re-mapping after an unmap.
  EXPECT_EQ(scenarioErrorOf(withPhases(kMap + R"(  - name: again
    events:
      - {type: dma-map, process: vmm, mapping: bar, length: 4K, iova: 0x80000000}
      - {type: dma-unmap, process: vmm, mapping: bar}
      - {type: dma-unmap, process: vmm, iova: 0x40000000, length: 1G}
      - {type: dma-map, process: vmm, mapping: bar, iova: 0x40000000}
)")),
            "(accepted)");
}

TEST(DmaScenario, DMA_05_UnalignedIovaAndLengthAreFileLineErrors) {
  const std::string iova = scenarioErrorOf(withPhases(R"(  - name: boot
    events:
      - {type: dma-map, process: vmm, mapping: bar, iova: 0x40000800}
)"));
  EXPECT_NE(iova.find("bad.yaml:20:"), std::string::npos) << iova;
  EXPECT_NE(iova.find("not a multiple of 4K"), std::string::npos) << iova;
  const std::string len = scenarioErrorOf(withPhases(R"(  - name: boot
    events:
      - {type: dma-map, process: vmm, mapping: bar, length: 6000, iova: 0x40000000}
)"));
  EXPECT_NE(len.find("bad.yaml:20:"), std::string::npos) << len;
  const std::string unmapLen = scenarioErrorOf(withPhases(R"(  - name: boot
    events:
      - {type: dma-unmap, process: vmm, iova: 0x40000000, length: 0}
)"));
  EXPECT_NE(unmapLen.find("non-zero multiple of 4K"), std::string::npos) << unmapLen;
}

TEST(DmaScenario, DMA_09_UnmapCuttingAMappingIsAFileLineError) {
  const std::string err = scenarioErrorOf(withPhases(kMap + R"(  - name: cut
    events:
      - {type: dma-unmap, process: vmm, iova: 0x40001000, length: 4K}
)"));
  EXPECT_NE(err.find("bad.yaml:23:"), std::string::npos) << err;
  EXPECT_NE(err.find("cuts the DMA mapping"), std::string::npos) << err;
}

TEST(DmaScenario, UnknownContainerMappingOrDeviceIsAFileLineError) {
  const std::string noContainer = scenarioErrorOf(withPhases(R"(  - name: boot
    events:
      - {type: dma-map, process: vmm, mapping: bar, iova: 0x40000000, via: container}
)",
                                                             "linux-6.15", "cdev"));
  EXPECT_NE(noContainer.find("bad.yaml:20:"), std::string::npos) << noContainer;
  EXPECT_NE(noContainer.find("has no container"), std::string::npos) << noContainer;
  const std::string noMapping = scenarioErrorOf(withPhases(R"(  - name: boot
    events:
      - {type: dma-map, process: vmm, mapping: bar9, iova: 0x40000000}
)"));
  EXPECT_NE(noMapping.find("has no mapping 'bar9'"), std::string::npos) << noMapping;
  const std::string notMapped = scenarioErrorOf(withPhases(R"(  - name: boot
    events:
      - {type: dma-unmap, process: vmm, mapping: bar}
)"));
  EXPECT_NE(notMapped.find("is not DMA-mapped"), std::string::npos) << notMapped;
  const std::string noDevice = scenarioErrorOf(withPhases(R"(  - name: boot
    events:
      - {type: dma, device: hba, iova: 0x40000000}
)"));
  EXPECT_NE(noDevice.find("undefined device 'hba'"), std::string::npos) << noDevice;
  const std::string size = scenarioErrorOf(withPhases(R"(  - name: boot
    events:
      - {type: dma, device: nic, iova: 0x40000000, size: 3}
)"));
  EXPECT_NE(size.find("1, 2, 4 or 8 bytes"), std::string::npos) << size;
}

// DMA-12 / DMA-18 on huge-fault (G3), unpopulated: P3 looks up every 4 KiB
// page and faults the PUD in once; P4 takes the leaf's mask as its stride:
// one lookup after the fault, one 1 GiB IOPTE (IOVA and BAR 1 GiB aligned)
// from one iommu_map call.
TEST(DmaScenario, DMA_12_LookupsAndFaultsPerEra) {
  const DesignResult p4 =
      runScenario(parseScenario(withPhases(kMap), "p4.yaml"), DesignKind::kHugeFault);
  const Metrics& m4 = p4.phases.at(0).m;
  EXPECT_TRUE(p4.phases.at(0).notes.empty());
  EXPECT_EQ(m4.dmaLookups, 1U);
  EXPECT_EQ(m4.dmaFaults, 1U);
  EXPECT_EQ(m4.pud, 1U);
  EXPECT_EQ(m4.iommuMaps, 1U);
  EXPECT_EQ(m4.iopte1g, 1U);
  EXPECT_EQ(m4.iopte2m + m4.iopte4k, 0U);
  const DesignResult p3 =
      runScenario(parseScenario(withPhases(kMap, "linux-6.12"), "p3.yaml"), DesignKind::kHugeFault);
  const Metrics& m3 = p3.phases.at(0).m;
  EXPECT_EQ(m3.dmaLookups, kGiB / 4096);
  EXPECT_EQ(m3.dmaFaults, 1U);
  EXPECT_EQ(m3.iopte1g, 1U);
  // The cost model prices the lookups (docs/cost-model.md).
  const CostModel cost;
  EXPECT_DOUBLE_EQ(m3.dmaModeledNs, static_cast<double>(kGiB / 4096) * cost.vaddrGetPfnsNs +
                                        cost.iommuMapCallNs + cost.iopteNs);
}

// DMA-13: decode off, the fault is SIGBUS, MAP_DMA -EFAULT: a recorded
// outcome (a note, as every refused syscall), nothing mapped.
TEST(DmaScenario, DMA_13_MapWithDecodeOffIsNotedEfault) {
  const DesignResult r = runScenario(parseScenario(withPhases(R"(  - name: boot
    events:
      - {type: memory-disable, device: gpu}
      - {type: dma-map, process: vmm, mapping: bar, iova: 0x40000000}
)"),
                                                   "off.yaml"),
                                     DesignKind::kHugeFault);
  const PhaseResult& p = r.phases.at(0);
  ASSERT_EQ(p.notes.size(), 1U);
  EXPECT_EQ(p.notes[0], "line 21: dma-map returned EFAULT");
  EXPECT_EQ(p.m.iopte1g + p.m.iopte2m + p.m.iopte4k, 0U);
  EXPECT_EQ(p.m.sigbus, 0U);  // the fault's SIGBUS is the kernel's, no task's
}

// IOMMUFD-04: IOAS_MAP of a BAR vaddr with a device attached is -EFAULT.
TEST(DmaScenario, IOMMUFD_04_IoasMapOfABarIsNotedEfault) {
  const DesignResult r = runScenario(
      parseScenario(withPhases(kMap, "linux-6.15", "cdev"), "fd.yaml"), DesignKind::kHugeFault);
  ASSERT_EQ(r.phases.at(0).notes.size(), 1U);
  EXPECT_EQ(r.phases.at(0).notes[0], "line 20: dma-map returned EFAULT");
  EXPECT_EQ(r.phases.at(0).m.iommuMaps, 0U);
}

// DMA-14: after MAP_DMA, MEM=0 zaps the CPU side only; a peer's DMA still
// translates and reaches the BAR with its decode off (invariant 7, the
// type1 hazard, reported and not a failure). After UNMAP_DMA (DMA-21: one
// iommu_iova_to_phys per 4 KiB) the same DMA is a DMAR fault, noted as the
// -EIO the device sees.
TEST(DmaScenario, DMA_14_PeerDmaAfterMemClearIsInvariant7) {
  const DesignResult r = runScenario(parseScenario(withPhases(kMap + R"(  - name: peer
    events:
      - {type: dma, device: nic, iova: 0x40000000, write: true}
      - {type: memory-disable, device: gpu}
      - {type: dma, device: nic, iova: 0x40001000, write: true, size: 8}
      - {type: dma-unmap, process: vmm, mapping: bar}
      - {type: dma, device: nic, iova: 0x40000000}
)"),
                                                   "peer.yaml"),
                                     DesignKind::kHugeFault);
  const PhaseResult& p = r.phases.at(1);
  EXPECT_EQ(p.m.dmaAccesses, 2U);
  EXPECT_EQ(p.m.dmaViolations, 1U);
  EXPECT_EQ(p.m.dmarFaults, 1U);
  EXPECT_EQ(p.m.iovaToPhys, kGiB / 4096);
  ASSERT_EQ(p.notes.size(), 1U);
  EXPECT_EQ(p.notes[0], "line 27: DMA read by nic at IOVA 0x40000000 returned EIO");
  EXPECT_EQ(r.total.dmaViolations, 1U);
  EXPECT_FALSE(r.failed);
}

// A forked child inherits the container fd: its dma events act on the
// parent's IOVA space, as the parser's overlap checks assume.
TEST(DmaScenario, ForkedChildUsesTheParentsContainer) {
  const DesignResult r = runScenario(parseScenario(withPhases(R"(  - name: boot
    events:
      - {type: dma-map, process: vmm, mapping: bar, length: 64K, iova: 0x100000}
      - {type: fork, process: vmm, child: kid}
      - {type: dma-unmap, process: kid, mapping: bar}
      - {type: dma-map, process: kid, mapping: bar, length: 64K, iova: 0x100000}
)"),
                                                   "fork.yaml"),
                                     DesignKind::kHugeFault);
  const PhaseResult& p = r.phases.at(0);
  EXPECT_TRUE(p.notes.empty()) << p.notes.front();
  EXPECT_EQ(p.m.iommuMaps, 2U);
  EXPECT_EQ(p.m.iovaToPhys, 16U);  // the unmap walk: one per 4 KiB (DMA-21)
}

// The trace shows every MAP_DMA as a slice with its lookups (docs/trace.md).
TEST(DmaScenario, DMA_12_TraceHasASlicePerMapDmaWithItsLookups) {
  RunOptions o;
  o.traceLimit = 100000;
  const DesignResult r = runScenario(parseScenario(withPhases(kMap, "linux-6.12"), "trace.yaml"),
                                     DesignKind::kHugeFault, o);
  ASSERT_NE(r.trace, nullptr);
  size_t slices = 0;
  for (const trace::TraceEvent& e : r.trace->events) {
    if (e.kind != trace::EventKind::kDmaMap) continue;
    ++slices;
    EXPECT_EQ(e.addr, 0x40000000U);
    EXPECT_EQ(e.end, 0x80000000U);
    EXPECT_EQ(e.value, kGiB / 4096);
    EXPECT_EQ(e.flags, 0U);
  }
  EXPECT_EQ(slices, 1U);
}

}  // namespace
}  // namespace vfiomm::sim
