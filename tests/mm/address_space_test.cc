// unmap_mapping_range over the i_mmap tree (mm-pfnmap.md §4, §5).
#include "mm/address_space.h"

#include <gtest/gtest.h>

#include <barrier>
#include <thread>

#include "base/counter.h"
#include "bound_context.h"
#include "kernel/kernel_profile.h"
#include "pfnmap_fixture.h"

namespace vfiomm::testing {
namespace {

using AddressSpaceTest = MmTest;

TEST_F(AddressSpaceTest, ZAP_03_HugeLeavesClearedWithoutSplitOneFlushPerVma) {
  auto h = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(h);
  ASSERT_TRUE(touch(*h).none());
  ASSERT_TRUE(touch(*h + kPudSize).none());
  auto small = mapBar(64 << 10, 3ULL << 30, VirtAddr(0x7e0000000000));
  ASSERT_TRUE(small);
  for (uint64_t off = 0; off < (64 << 10); off += kPageSize)
    ASSERT_TRUE(touch(*small + off).none());
  const uint64_t ptePages = mm->pageTable().tablePages(PtLevel::kPte);
  const CounterSnapshot before = CounterSet::current().snapshot();
  const uint64_t flushesBefore = machine.flushTotals().flushes.load();
  EXPECT_EQ(bar->zap(), 2U + 16U);
  const CounterSnapshot d = CounterSet::current().snapshot().since(before);
  EXPECT_EQ(d.get("mm.zap.pud"), 2U);
  EXPECT_EQ(d.get("mm.zap.pte"), 16U);
  EXPECT_EQ(d.get("mm.thp_split_pud"), 0U);
  EXPECT_EQ(machine.flushTotals().flushes.load() - flushesBefore, 2U);
  EXPECT_EQ(mm->pageTable().tablePages(PtLevel::kPte), ptePages);  // empty tables kept
  EXPECT_EQ(leaves(*h, 2ULL << 30).total() + leaves(*small, 64 << 10).total(), 0U);
}

// Only VMAs whose page interval overlaps the hole are visited, and only the
// overlapping part of each is zapped.
TEST_F(AddressSpaceTest, ZAP_01_TheQueryVisitsOnlyOverlappingVmas) {
  startProfile("linux-6.10", false);
  auto low = mapBar(64 << 10, 0);
  auto high = mapBar(64 << 10, 1ULL << 30);
  ASSERT_TRUE(low && high);
  for (uint64_t off = 0; off < (64 << 10); off += kPageSize) {
    ASSERT_TRUE(touch(*low + off).none());
    ASSERT_TRUE(touch(*high + off).none());
  }
  std::vector<VirtAddr> visited;
  bar->mapping()->setZapObserver([&](const Vma& v) { visited.push_back(v.start()); });
  // Bytes [0x1000, 0x3000) of the file: pages 1 and 2 of `low` only.
  EXPECT_EQ(bar->mapping()->unmapMappingRange(0x1000, 0x2000, true), 2U);
  ASSERT_EQ(visited.size(), 1U);
  EXPECT_EQ(visited[0], *low);
  EXPECT_TRUE(translate(*low).present);
  EXPECT_FALSE(translate(*low + 0x1000).present);
  EXPECT_FALSE(translate(*low + 0x2000).present);
  EXPECT_TRUE(translate(*low + 0x3000).present);
  // A length that rounds up, and 0 = to the end of the file.
  EXPECT_EQ(bar->mapping()->unmapMappingRange(0x3000, 1, true), 1U);
  EXPECT_EQ(bar->mapping()->unmapMappingRange(1ULL << 30, 0, true), 16U);
}

TEST_F(AddressSpaceTest, ZAP_02_OneCallReachesEveryMmAndEveryFile) {
  startProfile("linux-6.10", false);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  Mm other(machine, KernelProfile::byName("linux-6.10")->mm);
  Task ot;
  ot.mm = &other;
  auto ova = other.mmap(VirtAddr(0), 64 << 10, prot::kRead, map::kShared, bar, 0);
  ASSERT_TRUE(ova);
  ASSERT_TRUE(touchAs(ot, *ova, FaultAccess::kRead).none());
  const uint64_t calls = bar->mapping()->unmapCalls();
  EXPECT_EQ(bar->zap(), 2U);
  EXPECT_EQ(bar->mapping()->unmapCalls(), calls + 1);
  EXPECT_FALSE(translate(*va).present);
  EXPECT_FALSE(other.pageTable().translate(*ova).present);
}

// Races lined up by a barrier: a zap racing faults leaves nothing mapped once
// it returns. As in vfio, faults hold the driver's memory lock for read and
// the disable + zap holds it for write.
TEST_F(AddressSpaceTest, ZapRacingFaultsLeavesNoEntryAfterItReturns) {
  startProfile("linux-6.10", false);
  auto va = mapBar(4 << 20);
  ASSERT_TRUE(va);
  constexpr int kFaulters = 3;
  std::barrier sync(kFaulters + 1);
  std::atomic<bool> stop{false};
  std::vector<testing::BoundThread> threads;
  std::vector<std::unique_ptr<Task>> tasks;
  for (int i = 0; i < kFaulters; ++i) {
    tasks.push_back(std::make_unique<Task>());
    tasks.back()->mm = mm.get();
  }
  for (int i = 0; i < kFaulters; ++i) {
    threads.emplace_back(boundContext.context(), [&, i] {
      Task& t = *tasks[static_cast<size_t>(i)];
      sync.arrive_and_wait();
      for (uint64_t n = 0; !stop.load(); ++n) {
        const VirtAddr a = *va + ((n * 7 + static_cast<uint64_t>(i)) % 1024) * kPageSize;
        (void)doUserAddrFault(t, a, FaultAccess::kRead);
      }
    });
  }
  sync.arrive_and_wait();
  for (int round = 0; round < 20; ++round) {
    bar->disableAndZap();
    // No fault can install now (the driver refuses), so whatever is still
    // mapped escaped the zap.
    EXPECT_EQ(leaves(*va, 4 << 20).total(), 0U) << "round " << round;
    bar->setEnabled(true);
  }
  stop.store(true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

}  // namespace
}  // namespace vfiomm::testing
