#include "mm/page_table.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <optional>

#include "bound_context.h"
#include "mm/mmu_gather.h"

namespace vfiomm {
namespace {

constexpr uint64_t kProt = pte::kUser | pte::kRw | pte::kPcd;

// Installs a leaf the way the vmf_insert_pfn family does.
bool install(PageTable& pt, VirtAddr va, PtLevel level, Pfn pfn) {
  PageTable::Slot s;
  if (pt.slotAt(va, level, true, &s) != PageTable::WalkStatus::kOk) return false;
  SpinGuard g(pt.ptlFor(s));
  if (!pte::isNone(s.entry->load())) return false;
  s.entry->store(pte::makeLeaf(pfn, kProt, level != PtLevel::kPte));
  return true;
}

struct Flushes {
  int calls = 0;
  bool freed = false;
  TlbFlushFn fn() {
    return [this](VirtAddr, VirtAddr, unsigned, bool f) {
      ++calls;
      freed = freed || f;
    };
  }
};

TEST(PageTable, TablesAreAllocatedOnDemandAndAccountedLikePgtablesBytes) {
  testing::BoundContext bound;
  PageTable pt;
  EXPECT_EQ(pt.pgtablesBytes(), 0U);
  ASSERT_TRUE(install(pt, VirtAddr(0x7f0000000000), PtLevel::kPte, Pfn(0xF0000)));
  // One PUD, one PMD and one PTE table; the PGD belongs to the mm.
  EXPECT_EQ(pt.tablePages(PtLevel::kPud), 1U);
  EXPECT_EQ(pt.tablePages(PtLevel::kPmd), 1U);
  EXPECT_EQ(pt.tablePages(PtLevel::kPte), 1U);
  EXPECT_EQ(pt.pgtablesBytes(), 3 * kPageSize);
  const auto tr = pt.translate(VirtAddr(0x7f0000000123));
  EXPECT_TRUE(tr.present);
  EXPECT_EQ(tr.level, PtLevel::kPte);
  EXPECT_EQ(tr.pfn, Pfn(0xF0000));
  EXPECT_TRUE(pte::isSpecial(tr.entry));
}

TEST(PageTable, HugeLeavesNeedNoLowerTables) {
  testing::BoundContext bound;
  PageTable pt;
  ASSERT_TRUE(install(pt, VirtAddr(0x7f0040000000), PtLevel::kPud, Pfn(0x4000000)));
  EXPECT_EQ(pt.tablePages(PtLevel::kPmd), 0U);
  const auto tr = pt.translate(VirtAddr(0x7f0040000000 + 0x12345678));
  ASSERT_TRUE(tr.present);
  EXPECT_EQ(tr.level, PtLevel::kPud);
  EXPECT_EQ(tr.pfn, Pfn(0x4000000 + (0x12345678 >> 12)));
  // A PTE insert below a huge PUD leaf finds no table to use.
  PageTable::Slot s;
  EXPECT_EQ(pt.slotAt(VirtAddr(0x7f0040001000), PtLevel::kPte, true, &s),
            PageTable::WalkStatus::kHugeAbove);
}

// mm-pfnmap.md §8.4: the MMU ignores the pfn bits below the leaf's order.
TEST(PageTable, HUGE_05_MisalignedHugePfnTranslatesRoundedDown) {
  testing::BoundContext bound;
  PageTable pt;
  ASSERT_TRUE(install(pt, VirtAddr(0x7f0000200000), PtLevel::kPmd, Pfn(0x4000001)));
  EXPECT_EQ(pt.translate(VirtAddr(0x7f0000200000)).pfn, Pfn(0x4000000));
}

TEST(PageTable, ZapClearsLeavesButKeepsTablesAndGathersOneFlush) {
  testing::BoundContext bound;
  PageTable pt;
  const VirtAddr base(0x7f0000000000);
  for (uint64_t i = 0; i < 16; ++i)
    ASSERT_TRUE(install(pt, base + i * kPageSize, PtLevel::kPte, Pfn(0xF0000 + i)));
  Flushes f;
  {
    MmuGather tlb(f.fn());
    const LeafCounts c = pt.zapRange(base, base + 16 * kPageSize, tlb);
    EXPECT_EQ(c.pte, 16U);
  }
  EXPECT_EQ(f.calls, 1);
  EXPECT_FALSE(f.freed);
  EXPECT_FALSE(pt.translate(base).present);
  EXPECT_EQ(pt.tablePages(PtLevel::kPte), 1U);  // empty PTE tables stay (zap does not free)
}

TEST(PageTable, PartialZapOfAHugeLeafClearsItWhole) {
  testing::BoundContext bound;
  PageTable pt;
  const VirtAddr base(0x7f0000200000);
  ASSERT_TRUE(install(pt, base, PtLevel::kPmd, Pfn(0x4000000)));
  MmuGather tlb(nullptr);
  const LeafCounts c = pt.zapRange(base + kPageSize, base + 2 * kPageSize, tlb);
  EXPECT_EQ(c.pmd, 1U);
  EXPECT_FALSE(pt.translate(base).present);
  EXPECT_FALSE(pt.translate(base + kPmdSize - 1).present);
}

TEST(PageTable, FreePgtablesFreesOnlyTablesInsideTheHole) {
  testing::BoundContext bound;
  PageTable pt;
  const VirtAddr a(0x7f0000000000);          // PTE table 1 (first 2 MiB)
  const VirtAddr b(0x7f0000000000 + kPmdSize);  // PTE table 2
  ASSERT_TRUE(install(pt, a, PtLevel::kPte, Pfn(1)));
  ASSERT_TRUE(install(pt, b, PtLevel::kPte, Pfn(2)));
  Flushes f;
  {
    MmuGather tlb(f.fn());
    pt.zapRange(b, b + kPageSize, tlb);
    // A VMA still covers [a, a + 4 KiB): the floor is its end.
    pt.freePgtables(b, b + kPageSize, a + kPageSize, VirtAddr(1ULL << 47), tlb);
  }
  EXPECT_TRUE(f.freed);
  EXPECT_EQ(pt.tablePages(PtLevel::kPte), 1U);
  EXPECT_EQ(pt.tablePages(PtLevel::kPmd), 1U);  // shared with a's table
  EXPECT_TRUE(pt.translate(a).present);
}

TEST(PageTable, CopyRangeMarksTheChildsLeavesOldAndKeepsWrite) {
  testing::BoundContext bound;
  PageTable parent;
  PageTable child;
  const VirtAddr base(0x7f0040000000);
  ASSERT_TRUE(install(parent, base, PtLevel::kPud, Pfn(0x4000000)));
  ASSERT_TRUE(install(parent, base + kPudSize, PtLevel::kPmd, Pfn(0x4040000)));
  ASSERT_EQ(parent.copyRange(child, base, base + 2 * kPudSize), PageTable::WalkStatus::kOk);
  const auto pud = child.translate(base);
  const auto pmd = child.translate(base + kPudSize);
  ASSERT_TRUE(pud.present && pmd.present);
  EXPECT_EQ(pud.level, PtLevel::kPud);
  EXPECT_EQ(pmd.level, PtLevel::kPmd);
  EXPECT_TRUE(pte::isWritable(pud.entry));
  EXPECT_EQ(pud.entry & pte::kAccessed, 0U);
}

TEST(PageTable, AllocationFailureIsReportedNotHidden) {
  testing::BoundContext bound;
  PageTable pt;
  pt.setAllocFailure([](PtLevel l) { return l == PtLevel::kPte; });
  PageTable::Slot s;
  EXPECT_EQ(pt.slotAt(VirtAddr(0x7f0000000000), PtLevel::kPte, true, &s),
            PageTable::WalkStatus::kNoMem);
  EXPECT_EQ(pt.slotAt(VirtAddr(0x7f0000000000), PtLevel::kPmd, true, &s),
            PageTable::WalkStatus::kOk);
}

// Page tables against a flat model of leaves under random inserts, zaps and
// huge-leaf splits.
struct ModelLeaf {
  uint64_t size;
  uint64_t pfn;
};

std::optional<uint64_t> modelLookup(const std::map<uint64_t, ModelLeaf>& m, uint64_t va) {
  auto it = m.upper_bound(va);
  if (it == m.begin()) return std::nullopt;
  --it;
  if (va >= it->first + it->second.size) return std::nullopt;
  return it->second.pfn + ((va - it->first) >> kPageShift);
}

RC_GTEST_PROP(PageTableProperty, MatchesAFlatModel, ()) {
  testing::BoundContext bound;
  PageTable pt;
  std::map<uint64_t, ModelLeaf> model;  // leaf start -> leaf
  const uint64_t base = 0x7f0000000000;
  const uint64_t span = 4 * kPudSize;
  const int steps = *rc::gen::inRange(1, 60);
  for (int i = 0; i < steps; ++i) {
    const int op = *rc::gen::inRange(0, 3);
    const auto level = static_cast<PtLevel>(*rc::gen::inRange(0, 3));
    const uint64_t size = levelSize(level);
    const uint64_t va = base + (*rc::gen::inRange<uint64_t>(0, span / size)) * size;
    if (op == 0) {
      const uint64_t pfn = (*rc::gen::inRange<uint64_t>(1, 1000)) << levelOrder(level);
      bool overlaps = false;
      for (const auto& [s, leaf] : model) overlaps |= s < va + size && va < s + leaf.size;
      PageTable::Slot slot;
      const auto st = pt.slotAt(VirtAddr(va), level, true, &slot);
      const bool inserted = st == PageTable::WalkStatus::kOk && pte::isNone(slot.entry->load());
      // The tree may refuse where a table sits below (kept by zaps), but it
      // never accepts an insert over an existing leaf.
      if (overlaps) RC_ASSERT(!inserted);
      if (inserted) {
        slot.entry->store(pte::makeLeaf(Pfn(pfn), kProt, level != PtLevel::kPte));
        model[va] = ModelLeaf{size, pfn};
      }
    } else if (op == 1) {
      const uint64_t len = (*rc::gen::inRange<uint64_t>(1, 1024)) * kPageSize;
      MmuGather tlb(nullptr);
      pt.zapRange(VirtAddr(va), VirtAddr(va + len), tlb);
      for (auto it = model.begin(); it != model.end();)
        it = (it->first < va + len && va < it->first + it->second.size) ? model.erase(it)
                                                                          : std::next(it);
    } else {
      const uint64_t at = va + kPageSize * *rc::gen::inRange<uint64_t>(0, 4);
      MmuGather tlb(nullptr);
      pt.splitHugeAt(VirtAddr(at), tlb);
      for (auto it = model.begin(); it != model.end();) {
        const bool cut = it->second.size > kPageSize && it->first < at &&
                         at < it->first + it->second.size;
        it = cut ? model.erase(it) : std::next(it);
      }
    }
    for (uint64_t p = base; p < base + span; p += kPmdSize / 2) {
      const auto tr = pt.translate(VirtAddr(p));
      const auto want = modelLookup(model, p);
      RC_ASSERT(tr.present == want.has_value());
      if (tr.present) RC_ASSERT(tr.pfn.value() == *want);
    }
    for (const auto& [s, leaf] : model) {
      RC_ASSERT(pt.translate(VirtAddr(s)).pfn.value() == leaf.pfn);
      RC_ASSERT(pt.translate(VirtAddr(s + leaf.size - kPageSize)).present);
    }
  }
}

}  // namespace
}  // namespace vfiomm
