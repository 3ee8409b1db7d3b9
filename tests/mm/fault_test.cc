// The fault path with a vfio-like pfnmap driver (pfnmap_fixture.h).
#include <gtest/gtest.h>

#include <barrier>
#include <thread>

#include "base/counter.h"
#include "bound_context.h"
#include "pfnmap_fixture.h"

namespace vfiomm::testing {
namespace {

using FaultTest = MmTest;

TEST_F(FaultTest, FAULT_01_FirstReadInstallsAPresentSpecialLeaf) {
  startProfile("linux-6.10", /*huge=*/false);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  EXPECT_FALSE(translate(*va).present);  // mmap populates nothing
  EXPECT_TRUE(touch(*va).none());
  const auto tr = translate(*va);
  ASSERT_TRUE(tr.present);
  EXPECT_TRUE(pte::isSpecial(tr.entry));
  EXPECT_EQ(tr.pfn, Pfn::fromPhys(kBarBase));
  EXPECT_NE(tr.entry & pte::kPcd, 0U);  // pgprot_noncached
}

TEST_F(FaultTest, FAULT_02_DisabledDeviceGetsSigbusAndNoEntry) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  bar->setEnabled(false);
  const CounterSnapshot before = CounterSet::current().snapshot();
  const SigInfo sig = touch(*va);
  EXPECT_EQ(sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(sig.code, SigInfo::kBusAdrerr);
  EXPECT_FALSE(translate(*va).present);
  // ACCT-01: a SIGBUS fault counts PGFAULT but no min_flt.
  EXPECT_EQ(CounterSet::current().snapshot().since(before).get("vmstat.pgfault"), 1U);
  EXPECT_EQ(minFlt(), 0U);
}

TEST_F(FaultTest, FAULT_06_G2sOnePtePerFault) {
  startProfile("linux-6.10", false);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  EXPECT_EQ(leaves(*va, 64 << 10).pte, 1U);
  for (uint64_t off = 0; off < (64 << 10); off += kPageSize) ASSERT_TRUE(touch(*va + off).none());
  EXPECT_EQ(minFlt(), 16U);
  EXPECT_EQ(leaves(*va, 64 << 10).pte, 16U);
}

TEST_F(FaultTest, FAULT_07_ConcurrentFaultsOnOnePageInstallOneEntry) {
  startProfile("linux-6.10", false);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  const CounterSnapshot before = CounterSet::current().snapshot();
  constexpr int kThreads = 4;
  std::vector<std::unique_ptr<Task>> tasks;
  for (int i = 0; i < kThreads; ++i) {
    tasks.push_back(std::make_unique<Task>());
    tasks.back()->mm = mm.get();
  }
  std::barrier start(kThreads);
  std::vector<testing::BoundThread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back(boundContext.context(), [&, i] {
      start.arrive_and_wait();
      EXPECT_TRUE(doUserAddrFault(*tasks[static_cast<size_t>(i)], *va, FaultAccess::kRead).none());
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(leaves(*va, 64 << 10).pte, 1U);
  EXPECT_EQ(CounterSet::current().snapshot().since(before).get("mm.pfn_insert.pte"), 1U);
  // Every call that ends without error counts one minor fault.
  for (auto& t : tasks) EXPECT_EQ(t->minFlt.load(), 1U);
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

TEST_F(FaultTest, FAULT_12_StoreToReadOnlyMappingIsSigsegvWithoutTheHandler) {
  auto va = mapBar(64 << 10, 0, VirtAddr(0), prot::kRead);
  ASSERT_TRUE(va);
  const SigInfo sig = touch(*va, FaultAccess::kWrite);
  EXPECT_EQ(sig.signo, SigInfo::kSigsegv);
  EXPECT_EQ(sig.code, SigInfo::kSegvAccerr);
  EXPECT_EQ(bar->calls(0) + bar->calls(kPmdOrder) + bar->calls(kPudOrder), 0U);
}

TEST_F(FaultTest, TouchOutsideAnyVmaIsSegvMaperr) {
  const SigInfo sig = touch(VirtAddr(0x10000000));
  EXPECT_EQ(sig.signo, SigInfo::kSigsegv);
  EXPECT_EQ(sig.code, SigInfo::kSegvMaperr);
}

// Setup H: 2 GiB at a 1 GiB-aligned VA.
TEST_F(FaultTest, HUGE_01_AlignedTouchesInstallPudLeavesOnly) {
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  ASSERT_TRUE(touch(*va + kPudSize + 1).none());
  EXPECT_EQ(minFlt(), 2U);
  EXPECT_EQ(bar->calls(kPudOrder), 2U);
  EXPECT_EQ(bar->calls(kPmdOrder), 0U);
  const LeafCounts c = leaves(*va, 2ULL << 30);
  EXPECT_EQ(c.pud, 2U);
  EXPECT_EQ(c.pmd + c.pte, 0U);
  EXPECT_EQ(translate(*va).pfn, Pfn(0x4000000));
  EXPECT_EQ(mm->pageTable().tablePages(PtLevel::kPmd), 0U);
  EXPECT_EQ(mm->pageTable().tablePages(PtLevel::kPte), 0U);
}

TEST_F(FaultTest, HUGE_02_TwoMegAlignedWalkFallsBackToPmd) {
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000200000));
  ASSERT_TRUE(va);
  for (uint64_t off = 0; off < (2ULL << 30); off += kPmdSize) ASSERT_TRUE(touch(*va + off).none());
  EXPECT_EQ(minFlt(), 1024U);
  EXPECT_EQ(leaves(*va, 2ULL << 30).pmd, 1024U);
  // Linux calls huge_fault(18) only while the PUD entry is none
  // (__handle_mm_fault: `pud_none(*vmf.pud) && thp_vma_allowable_order()`):
  // once per 1 GiB slot the walk enters, 3 here. The spec's "every fault:
  // order 18 FALLBACK" does not hold for the faults after the first in a
  // slot; docs/spec-notes.md records the difference.
  EXPECT_EQ(bar->calls(kPudOrder), 3U);
  EXPECT_EQ(bar->calls(kPmdOrder), 1024U);
}

TEST_F(FaultTest, HUGE_03_MisalignedVaFallsBackToPtes) {
  auto va = mapBar(64ULL << 20, 0, VirtAddr(0x7f0000001000));
  ASSERT_TRUE(va);
  for (uint64_t off = 0; off < (64ULL << 20); off += kPageSize)
    ASSERT_TRUE(touch(*va + off).none());
  EXPECT_EQ(minFlt(), (64ULL << 20) / kPageSize);
  const LeafCounts c = leaves(*va, 64ULL << 20);
  EXPECT_EQ(c.pte, (64ULL << 20) / kPageSize);
  EXPECT_EQ(c.pmd + c.pud, 0U);
}

TEST_F(FaultTest, HUGE_06_PartialBlocksGetPtes) {
  auto va = mapBar(kPmdSize + kPageSize, 0, VirtAddr(0x7f0000200000));
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  ASSERT_TRUE(touch(*va + kPmdSize).none());
  EXPECT_EQ(translate(*va).level, PtLevel::kPmd);
  EXPECT_EQ(translate(*va + kPmdSize).level, PtLevel::kPte);
}

TEST_F(FaultTest, HUGE_07_NoHugepageForcesFourK) {
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  ASSERT_TRUE(mm->madvise(*va, 2ULL << 30, madv::kNoHugepage));
  ASSERT_TRUE(touch(*va).none());
  EXPECT_EQ(translate(*va).level, PtLevel::kPte);
  EXPECT_EQ(bar->calls(kPudOrder) + bar->calls(kPmdOrder), 0U);
}

TEST_F(FaultTest, HUGE_07_ThpDisabledByPrctlForcesFourK) {
  mm->setThpDisabled(true);
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  EXPECT_EQ(translate(*va).level, PtLevel::kPte);
}

// Switch thp_sysfs_gates_pfnmap in both positions.
TEST_F(FaultTest, HUGE_07_SysfsGateOffIgnoresThpNever) {
  startProfile("linux-6.12");  // gate off (6.12.115+)
  mm->setThpEnabled(ThpEnabled::kNever);
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  EXPECT_EQ(translate(*va).level, PtLevel::kPud);
}

TEST_F(FaultTest, HUGE_07_SysfsGateOnHonoursNeverAndMadvise) {
  startProfile("linux-6.15");  // gate on
  mm->setThpEnabled(ThpEnabled::kNever);
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  EXPECT_EQ(translate(*va).level, PtLevel::kPte);
  mm->setThpEnabled(ThpEnabled::kMadvise);
  ASSERT_TRUE(touch(*va + kPudSize).none());
  EXPECT_EQ(translate(*va + kPudSize).level, PtLevel::kPte);
  ASSERT_TRUE(mm->madvise(*va + kPudSize, kPudSize, madv::kHugepage));
  ASSERT_TRUE(touch(*va + kPudSize + kPmdSize * 8).none());
  EXPECT_EQ(translate(*va + kPudSize + kPmdSize * 8).level,
            PtLevel::kPmd);  // PUD holds a table now
}

TEST_F(FaultTest, HUGE_08_SigbusAtPudIsFinal) {
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  bar->setEnabled(false);
  EXPECT_EQ(touch(*va).signo, SigInfo::kSigbus);
  EXPECT_EQ(bar->calls(kPudOrder), 1U);
  EXPECT_EQ(bar->calls(kPmdOrder) + bar->calls(0), 0U);
}

TEST_F(FaultTest, HUGE_09_PmdInsertOverAPteTableChangesNothing) {
  auto va = mapBar(4ULL << 20, 0, VirtAddr(0x7f0000200000));
  ASSERT_TRUE(va);
  // A PTE table appears under the PMD (as if a 4 KiB fault won the race).
  PageTable::Slot s;
  ASSERT_EQ(mm->pageTable().slotAt(*va, PtLevel::kPte, true, &s), PageTable::WalkStatus::kOk);
  ReadGuard mmap(mm->mmapLock());
  VmFault vmf;
  vmf.vma = mm->findVma(*va);
  vmf.address = *va;
  EXPECT_EQ(vmfInsertPfnPmd(vmf, Pfn::fromPhys(kBarBase), false), vmfault::kNoPage);
  EXPECT_FALSE(translate(*va).present);
}

TEST_F(FaultTest, ACCT_01_SuccessfulUserFaultCountsOneMinorFault) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  const CounterSnapshot before = CounterSet::current().snapshot();
  ASSERT_TRUE(touch(*va).none());
  const CounterSnapshot d = CounterSet::current().snapshot().since(before);
  EXPECT_EQ(d.get("vmstat.pgfault"), 1U);
  EXPECT_EQ(task->minFlt.load(), 1U);
  EXPECT_EQ(task->majFlt.load(), 0U);
  EXPECT_EQ(task->perfMinor.load(), 1U);
}

TEST_F(FaultTest, ACCT_02_FixupUserFaultCountsMinorWithoutPerfAndSigbusIsEfault) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  ASSERT_TRUE(fixupUserFault(*task, *mm, *va, 0));
  EXPECT_EQ(task->minFlt.load(), 1U);
  EXPECT_EQ(task->perfMinor.load(), 0U);
  bar->setEnabled(false);
  auto st = fixupUserFault(*task, *mm, *va + kPageSize, 0);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error(), Errno::kEFAULT);
}

// The 4 KiB ->fault never runs under the per-VMA lock alone (vfio has no
// ->map_pages): that attempt returns RETRY, is not counted, and the mmap-lock
// attempt counts once as minor.
TEST_F(FaultTest, ACCT_03_VmaLockRetryIsNotCounted) {
  startProfile("linux-6.10", false);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  const CounterSnapshot before = CounterSet::current().snapshot();
  ASSERT_TRUE(touch(*va).none());
  const CounterSnapshot d = CounterSet::current().snapshot().since(before);
  EXPECT_EQ(d.get("vmstat.vma_lock_retry"), 1U);
  EXPECT_EQ(d.get("vmstat.pgfault"), 1U);
  EXPECT_EQ(task->minFlt.load(), 1U);
  EXPECT_EQ(task->majFlt.load(), 0U);
}

TEST_F(FaultTest, ACCT_04_OneFallbackChainCountsOneFault) {
  auto profile = *KernelProfile::byName("linux-6.12");
  profile.mm.perVmaLock = false;
  mm = std::make_unique<Mm>(machine, profile.mm);
  task->mm = mm.get();
  auto va = mapBar(64 << 10, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  EXPECT_EQ(bar->calls(kPudOrder), 1U);
  EXPECT_EQ(bar->calls(kPmdOrder), 1U);
  EXPECT_EQ(bar->calls(0), 1U);
  EXPECT_EQ(minFlt(), 1U);
}

// With the per-VMA lock the chain runs 18 -> 9 -> (RETRY) and then, under
// the mmap lock, 9 -> 0 again: the PUD entry is no longer none by then.
TEST_F(FaultTest, ACCT_04_PerVmaLockRetryRepeatsThePmdCall) {
  auto va = mapBar(64 << 10, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  EXPECT_EQ(bar->calls(kPudOrder), 1U);
  EXPECT_EQ(bar->calls(kPmdOrder), 2U);
  EXPECT_EQ(bar->calls(0), 1U);
  EXPECT_EQ(minFlt(), 1U);
}

TEST_F(FaultTest, ACCT_04_HugeMappingAllocatesNoLowerTables) {
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  for (uint64_t off = 0; off < (2ULL << 30); off += kPudSize) ASSERT_TRUE(touch(*va + off).none());
  EXPECT_EQ(mm->pageTable().tablePages(PtLevel::kPmd), 0U);
  EXPECT_EQ(mm->pageTable().tablePages(PtLevel::kPte), 0U);
}

TEST_F(FaultTest, ACCT_04_FourKMappingAllocatesPmdAndPteTables) {
  startProfile("linux-6.10", false);
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  for (uint64_t off = 0; off < (2ULL << 30); off += kPmdSize) ASSERT_TRUE(touch(*va + off).none());
  EXPECT_EQ(mm->pageTable().tablePages(PtLevel::kPmd), 2U);
  EXPECT_EQ(mm->pageTable().tablePages(PtLevel::kPte), 1024U);
}

// Huge faults run under the per-VMA lock; the 4 KiB one goes to the mmap lock.
TEST_F(FaultTest, LOCK_05_HugeFaultsRunUnderThePerVmaLock) {
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  const CounterSnapshot before = CounterSet::current().snapshot();
  ASSERT_TRUE(touch(*va).none());
  CounterSnapshot d = CounterSet::current().snapshot().since(before);
  EXPECT_EQ(d.get("vmstat.vma_lock_success"), 1U);
  EXPECT_EQ(d.get("vmstat.vma_lock_retry"), 0U);
  ASSERT_TRUE(mm->madvise(*va + kPudSize, kPudSize, madv::kNoHugepage));
  ASSERT_TRUE(touch(*va + kPudSize).none());
  d = CounterSet::current().snapshot().since(before);
  EXPECT_EQ(d.get("vmstat.vma_lock_retry"), 1U);
}

}  // namespace
}  // namespace vfiomm::testing
