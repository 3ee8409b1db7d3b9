#include "mm/page_table.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <utility>

#include "base/counter.h"
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
  PageTableArena arena;
  PageTable pt(arena);
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
  PageTableArena arena;
  PageTable pt(arena);
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

// The fault path steps from vmf->pud to vmf->pmd to the PTE with
// slotBelow(): each step must land where a walk from the PGD lands, and
// keep its answers for a hole and for a huge leaf above.
TEST(PageTable, SlotBelowStepsDownAsTheWalkFromThePgdDoes) {
  testing::BoundContext bound;
  PageTableArena arena;
  PageTable pt(arena);
  const VirtAddr va(0x7f0000201000);
  PageTable::Slot pud;
  ASSERT_EQ(pt.slotAt(va, PtLevel::kPud, true, &pud), PageTable::WalkStatus::kOk);
  PageTable::Slot pmd;
  EXPECT_EQ(pt.slotBelow(pud, va, false, &pmd), PageTable::WalkStatus::kAbsent);
  EXPECT_EQ(pt.tablePages(PtLevel::kPmd), 0U);
  ASSERT_EQ(pt.slotBelow(pud, va, true, &pmd), PageTable::WalkStatus::kOk);
  EXPECT_EQ(pt.tablePages(PtLevel::kPmd), 1U);
  PageTable::Slot fromPgd;
  ASSERT_EQ(pt.slotAt(va, PtLevel::kPmd, false, &fromPgd), PageTable::WalkStatus::kOk);
  EXPECT_EQ(pmd.entry, fromPgd.entry);
  EXPECT_EQ(pmd.table, fromPgd.table);
  EXPECT_EQ(pmd.level, PtLevel::kPmd);
  PageTable::Slot pteSlot;
  ASSERT_EQ(pt.slotBelow(pmd, va, true, &pteSlot), PageTable::WalkStatus::kOk);
  ASSERT_EQ(pt.slotAt(va, PtLevel::kPte, false, &fromPgd), PageTable::WalkStatus::kOk);
  EXPECT_EQ(pteSlot.entry, fromPgd.entry);
  EXPECT_EQ(pteSlot.level, PtLevel::kPte);
  // A huge leaf in the PMD entry of another 2 MiB block stops the step.
  const VirtAddr huge(0x7f0000400000);
  ASSERT_TRUE(install(pt, huge, PtLevel::kPmd, Pfn(0x4000000)));
  ASSERT_EQ(pt.slotBelow(pud, huge, false, &pmd), PageTable::WalkStatus::kOk);
  EXPECT_EQ(pt.slotBelow(pmd, huge + kPageSize, true, &pteSlot), PageTable::WalkStatus::kHugeAbove);
}

// mm-pfnmap.md §8.4: the MMU ignores the pfn bits below the leaf's order.
TEST(PageTable, HUGE_05_MisalignedHugePfnTranslatesRoundedDown) {
  testing::BoundContext bound;
  PageTableArena arena;
  PageTable pt(arena);
  ASSERT_TRUE(install(pt, VirtAddr(0x7f0000200000), PtLevel::kPmd, Pfn(0x4000001)));
  EXPECT_EQ(pt.translate(VirtAddr(0x7f0000200000)).pfn, Pfn(0x4000000));
}

TEST(PageTable, ZapClearsLeavesButKeepsTablesAndGathersOneFlush) {
  testing::BoundContext bound;
  PageTableArena arena;
  PageTable pt(arena);
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
  PageTableArena arena;
  PageTable pt(arena);
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
  PageTableArena arena;
  PageTable pt(arena);
  const VirtAddr a(0x7f0000000000);             // PTE table 1 (first 2 MiB)
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
  PageTableArena arena;
  PageTable parent(arena);
  PageTable child(arena);
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

// Every kind of entry around a PUD boundary, in one PUD table:
//   [base, +1G)          a PUD leaf
//   +1G                  a PMD leaf
//   +1G+2M               a PTE table with its first and last entry
//   +1G+4M               a PTE table a zap emptied
//   +1G+6M .. +2G-2M     a hole
//   +2G-4K, +2G          PTEs in two PMD tables
//   +2G+2M               a PMD leaf
struct MixedTable {
  static constexpr VirtAddr kBase{0x7f0040000000};
  PageTable pt;

  explicit MixedTable(PageTableArena& arena) : pt(arena) {
    const VirtAddr b = kBase;
    EXPECT_TRUE(install(pt, b, PtLevel::kPud, Pfn(0x4000000)));
    EXPECT_TRUE(install(pt, b + kPudSize, PtLevel::kPmd, Pfn(0x4040000)));
    EXPECT_TRUE(install(pt, b + kPudSize + kPmdSize, PtLevel::kPte, Pfn(0x10)));
    EXPECT_TRUE(install(pt, b + kPudSize + 2 * kPmdSize - kPageSize, PtLevel::kPte, Pfn(0x11)));
    EXPECT_TRUE(install(pt, b + kPudSize + 2 * kPmdSize, PtLevel::kPte, Pfn(0x12)));
    EXPECT_TRUE(install(pt, b + 2 * kPudSize - kPageSize, PtLevel::kPte, Pfn(0x13)));
    EXPECT_TRUE(install(pt, b + 2 * kPudSize, PtLevel::kPte, Pfn(0x14)));
    EXPECT_TRUE(install(pt, b + 2 * kPudSize + kPmdSize, PtLevel::kPmd, Pfn(0x4080000)));
    MmuGather tlb(nullptr);
    pt.zapRange(b + kPudSize + 2 * kPmdSize, b + kPudSize + 3 * kPmdSize, tlb);
  }
};

// Leaf start -> (level, whole entry) of every present leaf in [start, end).
std::map<uint64_t, std::pair<PtLevel, uint64_t>> leafMap(const PageTable& pt, VirtAddr start,
                                                         VirtAddr end) {
  std::map<uint64_t, std::pair<PtLevel, uint64_t>> m;
  pt.forEachLeaf(start, end, [&](VirtAddr va, PtLevel l, uint64_t e) { m[va.value()] = {l, e}; });
  return m;
}

uint64_t counterSince(const CounterSnapshot& before, const char* name) {
  return CounterSet::current().snapshot().since(before).get(name);
}

TEST(PageTableWalk, CopyOverMixedLevelsCopiesWholeLeavesAndOnlyTheTablesTheyNeed) {
  testing::BoundContext bound;
  PageTableArena arena;
  MixedTable parent(arena);
  PageTable child(arena);
  const VirtAddr b = MixedTable::kBase;
  // Starts inside the PUD leaf and ends inside the last PMD leaf: both go whole.
  const VirtAddr start = b + kPudSize / 2;
  const VirtAddr end = b + 2 * kPudSize + kPmdSize + kPageSize;
  ASSERT_EQ(parent.pt.copyRange(child, start, end), PageTable::WalkStatus::kOk);
  const auto want = leafMap(parent.pt, start, end);
  const auto got = leafMap(child, VirtAddr(0), VirtAddr(kTaskSize));
  ASSERT_EQ(got.size(), 7U);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [va, leaf] : want) {
    ASSERT_TRUE(got.contains(va)) << std::hex << va;
    EXPECT_EQ(got.at(va).first, leaf.first);
    EXPECT_EQ(got.at(va).second, leaf.second & ~pte::kAccessed);
  }
  // The emptied PTE table and the hole get no table in the child.
  EXPECT_EQ(child.tablePages(PtLevel::kPud), 1U);
  EXPECT_EQ(child.tablePages(PtLevel::kPmd), 2U);
  EXPECT_EQ(child.tablePages(PtLevel::kPte), 3U);
  EXPECT_EQ(parent.pt.tablePages(PtLevel::kPte), 4U);
}

TEST(PageTableWalk, CopyThatFailsMidwayKeepsWhatItCopied) {
  testing::BoundContext bound;
  PageTableArena arena;
  MixedTable parent(arena);
  PageTable child(arena);
  child.setAllocFailure([](PtLevel l) { return l == PtLevel::kPte; });
  const VirtAddr b = MixedTable::kBase;
  EXPECT_EQ(parent.pt.copyRange(child, b, b + 3 * kPudSize), PageTable::WalkStatus::kNoMem);
  // The leaves before the first PTE: the PUD and the first PMD leaf.
  const auto got = leafMap(child, VirtAddr(0), VirtAddr(kTaskSize));
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got.begin()->second.first, PtLevel::kPud);
  EXPECT_EQ(std::next(got.begin())->second.first, PtLevel::kPmd);
}

TEST(PageTableWalk, MoveToAnUnalignedPlaceCarriesPtesAcrossTablesAndSplitsHugeLeaves) {
  testing::BoundContext bound;
  PageTableArena arena;
  PageTable pt(arena);
  const VirtAddr x(0x7f0000000000 + kPmdSize);  // a PMD boundary
  for (uint64_t i = 0; i < 16; ++i)
    ASSERT_TRUE(install(pt, x - 8 * kPageSize + i * kPageSize, PtLevel::kPte, Pfn(0x100 + i)));
  ASSERT_TRUE(install(pt, x + kPmdSize, PtLevel::kPmd, Pfn(0x4000000)));
  // 5 pages before a PMD boundary: the 16 PTEs land in two tables again.
  const VirtAddr to(0x7f0100000000 + kPmdSize - 5 * kPageSize);
  const auto before = CounterSet::current().snapshot();
  Flushes f;
  {
    MmuGather tlb(f.fn());
    ASSERT_EQ(pt.moveRange(x - 8 * kPageSize, to, 8 * kPageSize + 2 * kPmdSize, tlb),
              PageTable::WalkStatus::kOk);
  }
  EXPECT_EQ(f.calls, 1);
  EXPECT_EQ(counterSince(before, "mm.thp_split_pmd"), 1U);  // not 2 MiB aligned at `to`
  EXPECT_TRUE(leafMap(pt, x - kPmdSize, x + 2 * kPmdSize).empty());
  const auto got = leafMap(pt, to, to + 8 * kPageSize + 2 * kPmdSize);
  ASSERT_EQ(got.size(), 16U);
  uint64_t i = 0;
  for (const auto& [va, leaf] : got) {
    EXPECT_EQ(va, (to + i * kPageSize).value());
    EXPECT_EQ(leaf.first, PtLevel::kPte);
    EXPECT_EQ(pte::pfnOf(leaf.second), Pfn(0x100 + i));
    ++i;
  }
  EXPECT_EQ(pt.tablePages(PtLevel::kPte), 4U);  // two kept at the source, two new
  EXPECT_EQ(pt.tablePages(PtLevel::kPmd), 2U);
}

TEST(PageTableWalk, MoveToAnAlignedPlaceKeepsHugeLeavesWhole) {
  testing::BoundContext bound;
  PageTableArena arena;
  MixedTable t(arena);
  const VirtAddr b = MixedTable::kBase;
  const VirtAddr to = b + 8 * kPudSize;
  const auto want = leafMap(t.pt, b, b + 3 * kPudSize);
  const auto before = CounterSet::current().snapshot();
  {
    MmuGather tlb(nullptr);
    ASSERT_EQ(t.pt.moveRange(b, to, 3 * kPudSize, tlb), PageTable::WalkStatus::kOk);
  }
  EXPECT_EQ(counterSince(before, "mm.thp_split_pmd"), 0U);
  EXPECT_EQ(counterSince(before, "mm.thp_split_pud"), 0U);
  EXPECT_TRUE(leafMap(t.pt, b, b + 3 * kPudSize).empty());
  const auto got = leafMap(t.pt, to, to + 3 * kPudSize);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [va, leaf] : want) EXPECT_EQ(got.at(va + (to - b)), leaf) << std::hex << va;
}

TEST(PageTableWalk, ZapOfPartlyCoveredHugeLeavesAndPtesAroundHoles) {
  testing::BoundContext bound;
  PageTableArena arena;
  MixedTable t(arena);
  const VirtAddr b = MixedTable::kBase;
  const auto before = CounterSet::current().snapshot();
  LeafCounts c;
  {
    MmuGather tlb(nullptr);
    // From inside the PUD leaf to the first PTE of the table after the PMD leaf.
    c = t.pt.zapRange(b + kPudSize / 2, b + kPudSize + kPmdSize + kPageSize, tlb);
  }
  EXPECT_EQ(c.pud, 1U);
  EXPECT_EQ(c.pmd, 1U);
  EXPECT_EQ(c.pte, 1U);
  EXPECT_EQ(counterSince(before, "mm.thp_split_pud"), 1U);
  EXPECT_EQ(counterSince(before, "mm.thp_split_pmd"), 0U);  // covered whole
  EXPECT_FALSE(t.pt.translate(b).present);
  EXPECT_TRUE(t.pt.translate(b + kPudSize + 2 * kPmdSize - kPageSize).present);
  EXPECT_EQ(leafMap(t.pt, b, b + 3 * kPudSize).size(), 4U);
  {
    // From a hole into the middle of the last PMD leaf.
    MmuGather tlb(nullptr);
    c = t.pt.zapRange(b + kPudSize + 3 * kPmdSize, b + 2 * kPudSize + kPmdSize + kPageSize, tlb);
  }
  EXPECT_EQ(c.pte, 2U);
  EXPECT_EQ(c.pmd, 1U);
  EXPECT_EQ(counterSince(before, "mm.thp_split_pmd"), 1U);
  EXPECT_EQ(leafMap(t.pt, b, b + 3 * kPudSize).size(), 1U);
  EXPECT_EQ(t.pt.tablePages(PtLevel::kPte), 4U);  // zaps free no table
}

TEST(PageTableWalk, WalksOverHolesTouchNothingAndAllocateNothing) {
  testing::BoundContext bound;
  PageTableArena arena;
  MixedTable t(arena);
  const VirtAddr b = MixedTable::kBase;
  // [+1G+6M, +2G-2M) has no tables; [+3G, +4G) not even a PMD table.
  for (const auto& [s, e] : {std::pair{b + kPudSize + 3 * kPmdSize, b + 2 * kPudSize - kPmdSize},
                             std::pair{b + 3 * kPudSize, b + 4 * kPudSize}}) {
    Flushes f;
    PageTable child(arena);
    {
      MmuGather tlb(f.fn());
      EXPECT_EQ(t.pt.zapRange(s, e, tlb).total(), 0U);
      EXPECT_EQ(t.pt.changeProtection(s, e, pte::kUser, tlb).total(), 0U);
      EXPECT_EQ(t.pt.moveRange(s, b + 8 * kPudSize, e - s, tlb), PageTable::WalkStatus::kOk);
    }
    EXPECT_EQ(f.calls, 0);
    EXPECT_EQ(t.pt.copyRange(child, s, e), PageTable::WalkStatus::kOk);
    EXPECT_EQ(child.pgtablesBytes(), 0U);
    EXPECT_TRUE(leafMap(t.pt, s, e).empty());
    PageTable::Slot slot;
    EXPECT_EQ(t.pt.slotAt(e - kPageSize, PtLevel::kPte, false, &slot),
              PageTable::WalkStatus::kAbsent);
  }
  EXPECT_EQ(t.pt.tablePages(PtLevel::kPmd), 2U);
  EXPECT_EQ(t.pt.tablePages(PtLevel::kPte), 4U);
  EXPECT_EQ(leafMap(t.pt, b, b + 4 * kPudSize).size(), 7U);
}

TEST(PageTableWalk, ChangeProtectionRewritesEveryLevelOnce) {
  testing::BoundContext bound;
  PageTableArena arena;
  MixedTable t(arena);
  const VirtAddr b = MixedTable::kBase;
  MmuGather tlb(nullptr);
  const LeafCounts c = t.pt.changeProtection(b, b + 3 * kPudSize, pte::kUser, tlb);
  EXPECT_EQ(c.pud, 1U);
  EXPECT_EQ(c.pmd, 2U);
  EXPECT_EQ(c.pte, 4U);
  for (const auto& [va, leaf] : leafMap(t.pt, b, b + 3 * kPudSize))
    EXPECT_FALSE(pte::isWritable(leaf.second)) << std::hex << va;
}

TEST(PageTable, AllocationFailureIsReportedNotHidden) {
  testing::BoundContext bound;
  PageTableArena arena;
  PageTable pt(arena);
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
  PageTableArena arena;
  PageTable pt(arena);
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
        const bool cut =
            it->second.size > kPageSize && it->first < at && at < it->first + it->second.size;
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

// Random leaves of every size over 4 GiB, some PTE tables left empty by zaps.
std::map<uint64_t, ModelLeaf> randomLeaves(PageTable& pt, uint64_t base, uint64_t span) {
  std::map<uint64_t, ModelLeaf> model;
  const int count = *rc::gen::inRange(1, 40);
  for (int i = 0; i < count; ++i) {
    const auto level = static_cast<PtLevel>(*rc::gen::inRange(0, 3));
    const uint64_t size = levelSize(level);
    const uint64_t va = base + (*rc::gen::inRange<uint64_t>(0, span / size)) * size;
    const uint64_t pfn = (*rc::gen::inRange<uint64_t>(1, 1000)) << levelOrder(level);
    if (install(pt, VirtAddr(va), level, Pfn(pfn))) model[va] = ModelLeaf{size, pfn};
  }
  const uint64_t emptied = base + *rc::gen::inRange<uint64_t>(0, span / kPmdSize) * kPmdSize;
  if (install(pt, VirtAddr(emptied), PtLevel::kPte, Pfn(1))) {
    MmuGather tlb(nullptr);
    pt.zapRange(VirtAddr(emptied), VirtAddr(emptied + kPageSize), tlb);
  }
  return model;
}

std::map<uint64_t, ModelLeaf> leavesOf(const PageTable& pt) {
  std::map<uint64_t, ModelLeaf> m;
  pt.forEachLeaf(VirtAddr(0), VirtAddr(kTaskSize), [&](VirtAddr va, PtLevel l, uint64_t e) {
    m[va.value()] = ModelLeaf{levelSize(l), pte::pfnOf(e).value()};
  });
  return m;
}

void assertSameLeaves(const std::map<uint64_t, ModelLeaf>& got,
                      const std::map<uint64_t, ModelLeaf>& want) {
  RC_ASSERT(got.size() == want.size());
  for (const auto& [va, leaf] : want) {
    const auto it = got.find(va);
    RC_ASSERT(it != got.end());
    RC_ASSERT(it->second.size == leaf.size);
    RC_ASSERT(it->second.pfn == leaf.pfn);
  }
}

// Tables of `level` the leaves need: one per table span holding a leaf no
// larger than the table's entries.
uint64_t tablesNeeded(const std::map<uint64_t, ModelLeaf>& leaves, PtLevel level) {
  std::set<uint64_t> tables;
  for (const auto& [va, leaf] : leaves)
    if (leaf.size <= levelSize(level)) tables.insert(va / (levelSize(level) * kPtrsPerTable));
  return tables.size();
}

// Pages [first, last) of a span: a random range of at least one page.
std::pair<uint64_t, uint64_t> randomPageRange(uint64_t span) {
  const uint64_t first = *rc::gen::inRange<uint64_t>(0, span / kPageSize);
  const uint64_t last = *rc::gen::inRange<uint64_t>(first + 1, span / kPageSize + 1);
  return {first, last};
}

RC_GTEST_PROP(PageTableProperty, CopyRangeCopiesExactlyTheOverlappingLeaves, ()) {
  testing::BoundContext bound;
  PageTableArena arena;
  PageTable parent(arena);
  const uint64_t base = 0x7f0000000000;
  const uint64_t span = 4 * kPudSize;
  const auto model = randomLeaves(parent, base, span);
  const auto [first, last] = randomPageRange(span);
  const VirtAddr start(base + first * kPageSize);
  const VirtAddr end(base + last * kPageSize);
  PageTable child(arena);
  RC_ASSERT(parent.copyRange(child, start, end) == PageTable::WalkStatus::kOk);
  std::map<uint64_t, ModelLeaf> want;
  for (const auto& [va, leaf] : model)
    if (va < end.value() && start.value() < va + leaf.size) want[va] = leaf;
  assertSameLeaves(leavesOf(child), want);
  assertSameLeaves(leavesOf(parent), model);
  // Tables only where a copied leaf needs one, each allocated once.
  for (PtLevel l : {PtLevel::kPte, PtLevel::kPmd, PtLevel::kPud})
    RC_ASSERT(child.tablePages(l) == tablesNeeded(want, l));
}

RC_GTEST_PROP(PageTableProperty, MoveRangeMovesPtesAndAlignedWholeHugeLeaves, ()) {
  testing::BoundContext bound;
  PageTableArena arena;
  PageTable pt(arena);
  const uint64_t base = 0x7f0000000000;
  const uint64_t span = 4 * kPudSize;
  const auto model = randomLeaves(pt, base, span);
  const auto [first, last] = randomPageRange(span);
  const uint64_t from = base + first * kPageSize;
  const uint64_t len = (last - first) * kPageSize;
  // Past the source and under the same PGD entry, at a 4 KiB, 2 MiB or
  // 1 GiB alignment.
  const auto align = static_cast<PtLevel>(*rc::gen::inRange(0, 3));
  const uint64_t to = base + 8 * kPudSize + *rc::gen::inRange<uint64_t>(0, 64) * levelSize(align);
  const uint64_t tablesBefore = pt.pgtablesBytes();
  {
    MmuGather tlb(nullptr);
    RC_ASSERT(pt.moveRange(VirtAddr(from), VirtAddr(to), len, tlb) == PageTable::WalkStatus::kOk);
  }
  std::map<uint64_t, ModelLeaf> want;
  std::map<uint64_t, ModelLeaf> moved;
  for (const auto& [va, leaf] : model) {
    if (va >= from + len || from >= va + leaf.size) {
      want[va] = leaf;
      continue;
    }
    const uint64_t target = to + (va - from);
    const bool whole = va >= from && va + leaf.size <= from + len;
    if (leaf.size == kPageSize || (whole && isAligned(target, leaf.size))) moved[target] = leaf;
  }
  want.insert(moved.begin(), moved.end());
  assertSameLeaves(leavesOf(pt), want);
  // The source keeps its tables; the destination, 8 GiB on, shares only the
  // PUD table.
  const uint64_t fresh = tablesNeeded(moved, PtLevel::kPte) + tablesNeeded(moved, PtLevel::kPmd);
  RC_ASSERT(pt.pgtablesBytes() == tablesBefore + fresh * kPageTableBytes);
}

}  // namespace
}  // namespace vfiomm
