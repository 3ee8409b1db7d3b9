// Exact counts for the deterministic phases (touch, dma-map, toggle, retouch)
// of the default scenario, for every design, on a scaled-down copy: BAR0 2 MiB,
// BAR1 1 GiB, BAR3 4 MiB instead of 16 MiB / 32 GiB / 32 MiB, so that the
// 4 KiB designs fault 263,680 pages per touch instead of 8.4 M (the full
// default runs in `vfiomm compare`). Everything else — layout, alignment
// to min(size, 1 GiB), phases — is the default's.
//
// Pages per full touch: 2M/4K + 1G/4K + 4M/4K = 512 + 262,144 + 1,024 = 263,680.
#include "sim/runner.h"

#include <gtest/gtest.h>

#include <string>

#include "scenario_helpers.h"
#include "sim/scenario.h"
#include "source_dir.h"

namespace vfiomm::sim {
namespace {

constexpr uint64_t kPages = 512 + 262144 + 1024;

std::string scaled() {
  std::string y = defaultScenarioYaml();
  auto sub = [&](const std::string& from, const std::string& to) {
    const size_t at = y.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    y.replace(at, from.size(), to);
  };
  sub("{index: 0, size: 16M", "{index: 0, size: 2M");
  sub("{index: 1, size: 32G", "{index: 1, size: 1G");
  sub("{index: 3, size: 32M", "{index: 3, size: 4M");
  return y;
}

class DefaultScenarioCounts : public ::testing::TestWithParam<DesignKind> {
 protected:
  static const Metrics& phase(const DesignResult& r, size_t i) { return r.phases.at(i).m; }
};

TEST_P(DefaultScenarioCounts, TouchToggleRetouch) {
  const Scenario sc = parseScenario(scaled(), "scaled-gpu-passthrough");
  const DesignResult r = runScenario(sc, GetParam());
  ASSERT_EQ(r.phases.size(), 6U);
  EXPECT_TRUE(r.setupNotes.empty());
  const Metrics& touch = phase(r, 0);
  const Metrics& dma = phase(r, 1);
  const Metrics& toggle = phase(r, 2);
  const Metrics& retouch = phase(r, 3);

  // The VM-boot DMA map (DMA-10/DMA-11/DMA-18): the touch populated every
  // mapping, so MAP_DMA faults nothing; every design's profile predates
  // 6.15 (P2 linux-6.9/6.10, P3 linux-6.12), so type1 looks up every 4 KiB
  // page whatever the CPU leaves. One iommu_map per BAR; IOVA and BAR
  // naturally aligned: BAR0 (2 MiB) one 2 MiB IOPTE, BAR1 one 1 GiB, BAR3
  // (4 MiB) two 2 MiB. No DMA runs, so invariant 7 has nothing to see.
  EXPECT_TRUE(r.phases.at(1).notes.empty());
  EXPECT_EQ(dma.dmaLookups, kPages);
  EXPECT_EQ(dma.dmaFaults, 0U);
  EXPECT_EQ(dma.faults, 0U);
  EXPECT_EQ(dma.iommuMaps, 3U);
  EXPECT_EQ(dma.iopte1g, 1U);
  EXPECT_EQ(dma.iopte2m, 3U);
  EXPECT_EQ(dma.iopte4k, 0U);
  EXPECT_EQ(dma.zaps, 0U);
  EXPECT_EQ(r.total.dmaViolations, 0U);

  // The touch reads one word per 4 KiB page of the three BARs, decode on.
  EXPECT_EQ(touch.accesses, kPages);
  EXPECT_EQ(retouch.accesses, kPages);
  for (const Metrics* m : {&touch, &toggle, &retouch}) {
    EXPECT_EQ(m->sigbus, 0U);
    EXPECT_EQ(m->sigsegv, 0U);
    EXPECT_EQ(m->violations, 0U);  // invariant 1 holds in every design here
  }
  // The toggle phase touches nothing: it faults nothing; the disable zaps
  // every entry the touch made, one zap_page_range_single per VMA (three
  // VMAs, found through vma_list or i_mmap), each flushing the one CPU that
  // ran the touch.
  EXPECT_EQ(toggle.faults, 0U);
  EXPECT_EQ(toggle.zaps, 3U);
  EXPECT_EQ(toggle.shootdowns, 3U);
  // The touch itself zaps nothing.
  EXPECT_EQ(touch.zaps, 0U);

  switch (GetParam()) {
    case DesignKind::kAddressSpace:
      // G2s: one vmf_insert_pfn (one PTE) per faulting 4 KiB page; every
      // page faults once, in the touch and again after the toggle's zap.
      EXPECT_EQ(touch.faults, kPages);
      EXPECT_EQ(touch.pte, kPages);
      EXPECT_EQ(touch.pmd + touch.pud + touch.fallback, 0U);
      EXPECT_EQ(toggle.zappedEntries, kPages);
      EXPECT_EQ(retouch.faults, kPages);
      EXPECT_EQ(retouch.pte, kPages);
      // Each access misses the TLB twice when it faults (the miss that
      // faults and the retried walk).
      EXPECT_EQ(touch.tlbMisses, 2 * kPages);
      break;
    case DesignKind::kVmaList:
    case DesignKind::kFillVma:
      // G1 / G2: the first fault of each VMA inserts every page of it (4K
      // PTEs), so three faults insert all 263,680 PTEs; the rest hit.
      EXPECT_EQ(touch.faults, 3U);
      EXPECT_EQ(touch.pte, kPages);
      EXPECT_EQ(touch.pmd + touch.pud, 0U);
      EXPECT_EQ(toggle.zappedEntries, kPages);
      EXPECT_EQ(retouch.faults, 3U);
      EXPECT_EQ(retouch.pte, kPages);
      break;
    case DesignKind::kHugeFault:
      // G3: BAR1 (1 GiB at a 1 GiB-aligned address, 1 GiB-aligned PFN)
      // gets one PUD; BAR0 (2 MiB) one PMD, BAR3 (4 MiB) two. One fault per
      // leaf. The first fault of a small VMA in a 1 GiB range with no PMD
      // table yet tries huge_fault(PUD) and vfio declines (the 1 GiB block
      // is not inside the VMA): a fallback per such range. BAR0 and BAR3
      // are placed in the same 1 GiB range here, so there is one, in the
      // first touch only (the zap clears leaves and keeps the PMD table).
      EXPECT_EQ(touch.faults, 4U);
      EXPECT_EQ(touch.pud, 1U);
      EXPECT_EQ(touch.pmd, 3U);
      EXPECT_EQ(touch.pte, 0U);
      EXPECT_EQ(touch.fallback, 1U);
      EXPECT_EQ(toggle.zappedEntries, 4U);
      EXPECT_EQ(retouch.faults, 4U);
      EXPECT_EQ(retouch.pud, 1U);
      EXPECT_EQ(retouch.pmd, 3U);
      EXPECT_EQ(retouch.fallback, 0U);
      break;
    case DesignKind::kPrefault:
      // Ours: the first fault of each VMA fills it with the largest entries
      // (3 faults: 1 PUD + 3 PMDs); when decode comes back in the toggle
      // the address space is refilled, so the retouch faults nothing.
      EXPECT_EQ(touch.faults, 3U);
      EXPECT_EQ(touch.pud, 1U);
      EXPECT_EQ(touch.pmd, 3U);
      EXPECT_EQ(touch.pte, 0U);
      EXPECT_EQ(toggle.zappedEntries, 4U);
      EXPECT_EQ(toggle.pud, 1U);
      EXPECT_EQ(toggle.pmd, 3U);
      EXPECT_EQ(retouch.faults, 0U);
      EXPECT_EQ(retouch.pud + retouch.pmd + retouch.pte, 0U);
      break;
  }
  // Invariant 5: lockdep is quiet outside vma-list.
  if (GetParam() != DesignKind::kVmaList) {
    EXPECT_EQ(r.total.lockdepReports, 0U);
    EXPECT_FALSE(r.failed);
  }
  // The modelled time follows the cost model.
  EXPECT_DOUBLE_EQ(touch.modeledNs, sc.cost.modeledNs(touch.costInputs()));
}

// scenarios/runtime-pm-and-mm.yaml: the signals are the same in every
// design, because they come from the mm and the device, not the fault
// handler's strategy.
TEST_P(DefaultScenarioCounts, RuntimePmAndMmSignals) {
  const Scenario sc = loadScenario(test::sourceDir() + "/scenarios/runtime-pm-and-mm.yaml");
  const DesignResult r = runScenario(sc, GetParam());
  ASSERT_EQ(r.phases.size(), 6U);
  for (const PhaseResult& p : r.phases)
    EXPECT_TRUE(p.notes.empty()) << p.name << ": " << p.notes.front();
  // In low power (D3hot) every access faults and gets SIGBUS: 16 random
  // reads in each of the two BARs.
  EXPECT_EQ(r.phases[2].m.sigbus, 32U);
  EXPECT_EQ(r.phases[2].m.violations, 0U);
  // After the move: bar0 (4 MiB) has its second half unmapped, so 512 of
  // its 1,024 page stores get SIGSEGV (SEGV_MAPERR); bar2 (64 KiB) is
  // read-only, so its 16 stores get SIGSEGV (SEGV_ACCERR): 528.
  EXPECT_EQ(r.phases[5].m.sigsegv, 512U + 16U);
  EXPECT_EQ(r.phases[5].m.sigbus, 0U);
  EXPECT_EQ(r.total.violations, 0U);
}

std::string name(const ::testing::TestParamInfo<DesignKind>& info) {
  std::string n(designName(info.param));
  for (char& c : n)
    if (c == '-') c = '_';
  return n;
}

// A scenario's TLB override reaches every CPU: 16 pages touched twice in
// order. The default STLB keeps all 16, so the second touch never misses; a
// 4-entry fully associative LRU TLB has evicted each page 4 touches after
// filling it, so every one of the 16 misses again.
TEST(ScenarioTlb, OverrideReachesTheCpus) {
  const std::string base = kOneBarScenario + R"(  - name: retouch
    threads:
      - {process: p, cpu: 0}
)";
  const auto retouchMisses = [](const std::string& yaml) {
    const DesignResult r = runScenario(parseScenario(yaml, "tlb.yaml"), DesignKind::kAddressSpace);
    EXPECT_EQ(r.phases.at(1).m.accesses, 16U);
    EXPECT_EQ(r.phases.at(1).m.faults, 0U);
    return r.phases.at(1).m.tlbMisses;
  };
  EXPECT_EQ(retouchMisses(base), 0U);
  EXPECT_EQ(retouchMisses(base + "tlb: {4k: {entries: 4, ways: 4}}\n"), 16U);
}

// `runtime_pm:` is the device's power/control. Left "auto" (vfio-pci's
// default), LOW_POWER_ENTRY's ioctl ends by suspending the device and the
// EXIT ioctl begins by resuming it: one memory_lock write section more in
// each phase than with "on", where the device never suspends.
TEST(ScenarioRuntimePm, PowerControlDecidesWhetherLowPowerSuspends) {
  const std::string yaml = R"(name: rpm
devices:
  - name: d
    runtime_pm: RPM
    bars:
      - {index: 0, size: 64K, type: mem32}
processes:
  - name: p
    open: [d]
phases:
  - name: enter
    events:
      - {type: low-power-entry, device: d}
  - name: leave
    events:
      - {type: low-power-exit, device: d}
)";
  const auto writes = [&](const std::string& rpm) {
    std::string y = yaml;
    y.replace(y.find("RPM"), 3, rpm);
    const DesignResult r = runScenario(parseScenario(y, "rpm.yaml"), DesignKind::kAddressSpace);
    return std::pair{r.phases.at(0).m.memoryLockWrites, r.phases.at(1).m.memoryLockWrites};
  };
  EXPECT_EQ(writes("true"), (std::pair<uint64_t, uint64_t>{2, 2}));
  EXPECT_EQ(writes("false"), (std::pair<uint64_t, uint64_t>{1, 1}));
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, DefaultScenarioCounts, ::testing::ValuesIn(allDesigns()),
                         name);

}  // namespace
}  // namespace vfiomm::sim
