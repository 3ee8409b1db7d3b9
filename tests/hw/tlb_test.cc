#include "hw/tlb.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <array>
#include <vector>

#include "base/counter.h"
#include "bound_context.h"

namespace vfiomm {
namespace {

constexpr uint64_t kMmA = 1;
constexpr uint64_t kMmB = 2;

// 4 sets of 2 ways per size: small enough to fill a set by hand.
TlbGeometry tinyGeometry() { return TlbGeometry{{8, 2}, {8, 2}, {4, 2}}; }

TlbEntry leaf(PtLevel level, uint64_t pfnBase, bool writable = true) {
  TlbEntry e;
  e.level = level;
  e.pfnBase = Pfn(pfnBase);
  e.writable = writable;
  return e;
}

// The address of 4 KiB page `vpn`.
VirtAddr page(uint64_t vpn) { return VirtAddr(vpn << kPageShift); }

uint64_t counter(const char* name) { return CounterSet::current().snapshot().get(name); }

TEST(Tlb, HitReturnsTheCachedLeafAndTranslatesWithinIt) {
  testing::BoundContext bound;
  Tlb tlb(tinyGeometry());
  EXPECT_EQ(tlb.lookup(kMmA, page(3), false), nullptr);
  tlb.insert(kMmA, page(3), leaf(PtLevel::kPte, 0x800));
  const TlbEntry* e = tlb.lookup(kMmA, page(3) + 0x10, false);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->physAddr(page(3) + 0x10), PhysAddr(0x800'010));

  const VirtAddr huge(0x4020'0000);  // a 2 MiB block
  tlb.insert(kMmA, huge + 0x5000, leaf(PtLevel::kPmd, 0x400));
  e = tlb.lookup(kMmA, huge + 0x1f'fff8, true);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->level, PtLevel::kPmd);
  EXPECT_EQ(e->physAddr(huge + 0x1f'fff8), PhysAddr((0x400ULL << kPageShift) + 0x1f'fff8));
  EXPECT_EQ(tlb.lookup(kMmA, huge + kPmdSize, false), nullptr);

  const VirtAddr giant(3 * kPudSize);
  tlb.insert(kMmA, giant, leaf(PtLevel::kPud, 0x40000));
  EXPECT_NE(tlb.lookup(kMmA, giant + kPudSize - 8, false), nullptr);
  EXPECT_EQ(tlb.stats().hits[0].load(), 1U);
  EXPECT_EQ(tlb.stats().hits[1].load(), 1U);
  EXPECT_EQ(tlb.stats().hits[2].load(), 1U);
  EXPECT_EQ(tlb.stats().fills[1].load(), 1U);
  EXPECT_EQ(tlb.stats().misses.load(), 2U);
}

TEST(Tlb, CountsHitsAndMissesGlobally) {
  testing::BoundContext bound;
  Tlb tlb(tinyGeometry());
  const uint64_t hits = counter("tlb.hit");
  const uint64_t misses = counter("tlb.miss");
  tlb.lookup(kMmA, page(1), false);
  tlb.insert(kMmA, page(1), leaf(PtLevel::kPte, 1));
  tlb.lookup(kMmA, page(1), false);
  tlb.lookup(kMmA, page(1), true);
  EXPECT_EQ(counter("tlb.miss") - misses, 1U);
  tlb.lookup(kMmA, page(2), false);  // a miss publishes the hits so far
  EXPECT_EQ(counter("tlb.hit") - hits, 2U);

  // Between misses and flushes hits arrive in batches: never more than a
  // batch behind.
  for (uint64_t i = 0; i < Tlb::kHitPublishBatch; ++i) tlb.lookup(kMmA, page(1), false);
  const uint64_t published = counter("tlb.hit") - hits;
  EXPECT_GT(published, 2U);
  EXPECT_LT(2U + Tlb::kHitPublishBatch - published, Tlb::kHitPublishBatch);
  tlb.flushMm(kMmB);
  EXPECT_EQ(counter("tlb.hit") - hits, 2U + Tlb::kHitPublishBatch);
  EXPECT_EQ(tlb.stats().hits[0].load(), 2U + Tlb::kHitPublishBatch) << "per-TLB stats never lag";

  // A fill between a hit and the next miss does not hide the hit from it.
  tlb.lookup(kMmA, page(1), false);
  tlb.insert(kMmA, page(3), leaf(PtLevel::kPte, 3));
  tlb.lookup(kMmA, page(2), false);
  EXPECT_EQ(counter("tlb.hit") - hits, 3U + Tlb::kHitPublishBatch);
}

TEST(Tlb, FullSetEvictsItsLeastRecentlyUsedEntry) {
  testing::BoundContext bound;
  Tlb tlb(tinyGeometry());
  // vpns 0, 4 and 8 share set 0 of the 4-set array; 1 lives in set 1.
  tlb.insert(kMmA, page(0), leaf(PtLevel::kPte, 100));
  tlb.insert(kMmA, page(4), leaf(PtLevel::kPte, 104));
  tlb.insert(kMmA, page(1), leaf(PtLevel::kPte, 101));
  ASSERT_NE(tlb.lookup(kMmA, page(0), false), nullptr);  // 4 is now the older one
  tlb.insert(kMmA, page(8), leaf(PtLevel::kPte, 108));
  EXPECT_TRUE(tlb.probe(kMmA, page(0)));
  EXPECT_FALSE(tlb.probe(kMmA, page(4)));
  EXPECT_TRUE(tlb.probe(kMmA, page(8)));
  EXPECT_TRUE(tlb.probe(kMmA, page(1))) << "another set is not disturbed";
  EXPECT_EQ(tlb.size(), 3U);

  // Without the touch, insertion order decides.
  tlb.insert(kMmA, page(12), leaf(PtLevel::kPte, 112));
  EXPECT_FALSE(tlb.probe(kMmA, page(0)));
  EXPECT_TRUE(tlb.probe(kMmA, page(8)));
}

TEST(Tlb, ReinsertingATranslationReusesItsEntry) {
  testing::BoundContext bound;
  Tlb tlb(tinyGeometry());
  tlb.insert(kMmA, page(0), leaf(PtLevel::kPte, 100, false));
  tlb.insert(kMmA, page(4), leaf(PtLevel::kPte, 104));
  tlb.insert(kMmA, page(0), leaf(PtLevel::kPte, 200));
  EXPECT_TRUE(tlb.probe(kMmA, page(4)));
  EXPECT_EQ(tlb.size(), 2U);
  EXPECT_EQ(tlb.lookup(kMmA, page(0), true)->pfnBase, Pfn(200));
}

TEST(Tlb, DefaultGeometryHoldsGoldenCoveStlbCapacity) {
  testing::BoundContext bound;
  Tlb tlb;
  EXPECT_EQ(tlb.geometry().page4k.entries, 2048U);
  EXPECT_EQ(tlb.geometry().page4k.ways, 16U);
  EXPECT_EQ(tlb.geometry().page1g.entries, 1024U);
  EXPECT_EQ(tlb.geometry().page1g.ways, 8U);
  for (uint64_t v = 0; v < 2048; ++v) tlb.insert(kMmA, page(v), leaf(PtLevel::kPte, v));
  EXPECT_EQ(tlb.size(), 2048U);
  for (uint64_t v = 0; v < 2048; ++v) ASSERT_TRUE(tlb.probe(kMmA, page(v))) << v;
  // One more page in set 0 evicts exactly its oldest entry, page 0.
  tlb.insert(kMmA, page(2048), leaf(PtLevel::kPte, 2048));
  EXPECT_EQ(tlb.size(), 2048U);
  EXPECT_FALSE(tlb.probe(kMmA, page(0)));
  EXPECT_TRUE(tlb.probe(kMmA, page(128)));
}

TEST(Tlb, EntriesAreTaggedByMm) {
  testing::BoundContext bound;
  Tlb tlb(tinyGeometry());
  tlb.insert(kMmA, page(5), leaf(PtLevel::kPte, 1));
  EXPECT_EQ(tlb.lookup(kMmB, page(5), false), nullptr) << "another mm's entry is no hit";
  tlb.insert(kMmB, page(5), leaf(PtLevel::kPte, 2));
  EXPECT_EQ(tlb.lookup(kMmA, page(5), false)->pfnBase, Pfn(1));
  EXPECT_EQ(tlb.lookup(kMmB, page(5), false)->pfnBase, Pfn(2));

  tlb.flushMm(kMmA);
  EXPECT_FALSE(tlb.probe(kMmA, page(5)));
  EXPECT_TRUE(tlb.probe(kMmB, page(5)));
  tlb.flushAll();
  EXPECT_EQ(tlb.size(), 0U);
}

TEST(Tlb, FlushRangeInvalidatesOnlyTheStridedAddressesOfThatMm) {
  testing::BoundContext bound;
  Tlb tlb(TlbGeometry{});
  for (uint64_t v = 0; v < 8; ++v) {
    tlb.insert(kMmA, page(v), leaf(PtLevel::kPte, v));
    tlb.insert(kMmB, page(v), leaf(PtLevel::kPte, v));
  }
  const uint64_t before = counter("tlb.flush.one");
  EXPECT_EQ(tlb.flushRange(kMmA, page(2), page(5), kPageShift), 3U);
  EXPECT_EQ(counter("tlb.flush.one") - before, 3U);
  for (uint64_t v = 0; v < 8; ++v) {
    EXPECT_EQ(tlb.probe(kMmA, page(v)), v < 2 || v >= 5) << v;
    EXPECT_TRUE(tlb.probe(kMmB, page(v))) << v;
  }
  EXPECT_EQ(tlb.stats().pagesFlushed.load(), 3U);
  EXPECT_EQ(tlb.stats().fullFlushes.load(), 0U);
}

TEST(Tlb, InvlpgOfAnyAddressInAHugeLeafDropsIt) {
  testing::BoundContext bound;
  Tlb tlb(TlbGeometry{});
  const VirtAddr pmd(0x20'0000);
  const VirtAddr pud(kPudSize);
  tlb.insert(kMmA, pmd, leaf(PtLevel::kPmd, 512));
  tlb.insert(kMmA, pud, leaf(PtLevel::kPud, 0x40000));
  // A 4 KiB-stride flush of one page in the middle of each leaf.
  tlb.flushRange(kMmA, pmd + 0x3000, pmd + 0x4000, kPageShift);
  EXPECT_FALSE(tlb.probe(kMmA, pmd));
  EXPECT_TRUE(tlb.probe(kMmA, pud));
  // A 2 MiB stride over the first 4 MiB of the 1 GiB leaf.
  EXPECT_EQ(tlb.flushRange(kMmA, pud, pud + 2 * kPmdSize, kPmdShift), 2U);
  EXPECT_FALSE(tlb.probe(kMmA, pud + kPudSize - 8));
}

TEST(Tlb, StoreToReadOnlyEntryMissesAndDropsIt) {
  testing::BoundContext bound;
  Tlb tlb(tinyGeometry());
  tlb.insert(kMmA, page(7), leaf(PtLevel::kPte, 7, /*writable=*/false));
  EXPECT_NE(tlb.lookup(kMmA, page(7), false), nullptr);
  EXPECT_EQ(tlb.lookup(kMmA, page(7), true), nullptr);
  EXPECT_FALSE(tlb.probe(kMmA, page(7)));
}

TEST(Tlb, FrontHitCountsTicksAndTouchesAsTheArraysHitDoes) {
  testing::BoundContext bound;
  Tlb tlb(tinyGeometry());
  tlb.insert(kMmA, page(0), leaf(PtLevel::kPte, 100));
  tlb.insert(kMmA, page(4), leaf(PtLevel::kPte, 104));
  // The first lookup of 0 searches the arrays, the next two hit the front;
  // each counts a hit and ticks the LRU clock (the batches of "tlb.hit"
  // follow it, CountsHitsAndMissesGlobally), and 0 stays the newer entry.
  for (uint64_t i = 0; i < 3; ++i) ASSERT_NE(tlb.lookup(kMmA, page(0) + 8 * i, false), nullptr);
  EXPECT_EQ(tlb.stats().hits[0].load(), 3U);
  EXPECT_EQ(tlb.stats().misses.load(), 0U);
  tlb.insert(kMmA, page(8), leaf(PtLevel::kPte, 108));
  EXPECT_TRUE(tlb.probe(kMmA, page(0)));
  EXPECT_FALSE(tlb.probe(kMmA, page(4)));
  // Another mm's page, or a store through a read-only entry, is not the
  // front's: the arrays answer (a miss; the store drops the entry).
  EXPECT_EQ(tlb.lookup(kMmB, page(0), false), nullptr);
  tlb.insert(kMmA, page(1), leaf(PtLevel::kPte, 101, false));
  ASSERT_NE(tlb.lookup(kMmA, page(1), false), nullptr);
  EXPECT_EQ(tlb.lookup(kMmA, page(1), true), nullptr);
  EXPECT_FALSE(tlb.probe(kMmA, page(1)));
  EXPECT_EQ(tlb.stats().misses.load(), 2U);
}

TEST(Tlb, EveryChangeToTheArraysDropsTheFront) {
  testing::BoundContext bound;
  // One way per set: an insert into 0's set evicts the entry the front holds.
  Tlb tlb(TlbGeometry{{4, 1}, {4, 1}, {4, 1}});
  const auto frontOn = [&](uint64_t vpn) {
    tlb.insert(kMmA, page(vpn), leaf(PtLevel::kPte, 100 + vpn));
    ASSERT_NE(tlb.lookup(kMmA, page(vpn), false), nullptr);
  };
  frontOn(0);
  tlb.insert(kMmA, page(4), leaf(PtLevel::kPte, 104));
  EXPECT_EQ(tlb.lookup(kMmA, page(0), false), nullptr) << "evicted by an insert";
  frontOn(0);
  tlb.flushRange(kMmA, page(0), page(1), kPageShift);
  EXPECT_EQ(tlb.lookup(kMmA, page(0), false), nullptr) << "invlpg";
  frontOn(0);
  tlb.flushMm(kMmA);
  EXPECT_EQ(tlb.lookup(kMmA, page(0), false), nullptr) << "flush of the mm";
  frontOn(0);
  tlb.flushAll();
  EXPECT_EQ(tlb.lookup(kMmA, page(0), false), nullptr) << "flush of all";
  EXPECT_EQ(tlb.stats().misses.load(), 4U);
  EXPECT_EQ(tlb.stats().hits[0].load(), 4U);
}

TEST(Tlb, FrontStandsForAWholeHugeLeafThatNoSmallerEntryMayShadow) {
  testing::BoundContext bound;
  Tlb tlb(tinyGeometry());
  const VirtAddr giant(3 * kPudSize);
  tlb.insert(kMmA, giant, leaf(PtLevel::kPud, 0x40000));
  ASSERT_NE(tlb.lookup(kMmA, giant, false), nullptr);
  // Every 4 KiB page of the 1 GiB leaf now meets the front, and a hit
  // through it counts as the arrays' hit of the 1 GiB entry does.
  EXPECT_NE(tlb.front(kMmA, giant + 5 * kPageSize, false), nullptr);
  EXPECT_NE(tlb.front(kMmA, giant + kPudSize - 8, false), nullptr);
  EXPECT_EQ(tlb.front(kMmA, giant + kPudSize, false), nullptr);
  EXPECT_EQ(tlb.front(kMmB, giant, false), nullptr);
  for (uint64_t i = 0; i < 4; ++i)
    ASSERT_NE(tlb.lookup(kMmA, giant + i * kPmdSize, false), nullptr);
  EXPECT_EQ(tlb.stats().hits[2].load(), 5U);
}

TEST(Tlb, AFrontOnAHugeLeafNeverHidesTheSmallerEntryTheArraysFindFirst) {
  testing::BoundContext bound;
  Tlb tlb(tinyGeometry());
  // A 2 MiB entry inside the 1 GiB leaf (a stale one, as a split leaves
  // until its flush): the arrays search 2 MiB before 1 GiB and find it.
  const VirtAddr giant(3 * kPudSize);
  const VirtAddr inside = giant + 7 * kPmdSize;
  tlb.insert(kMmA, giant, leaf(PtLevel::kPud, 0x40000));
  tlb.insert(kMmA, inside, leaf(PtLevel::kPmd, 0x800));
  ASSERT_EQ(tlb.lookup(kMmA, giant, false)->level, PtLevel::kPud);
  EXPECT_EQ(tlb.front(kMmA, inside, false), nullptr);
  EXPECT_EQ(tlb.lookup(kMmA, inside + 8, false)->level, PtLevel::kPmd);
  // The 2 MiB leaf shadows no 4 KiB entry, so it gets a front of its own.
  EXPECT_NE(tlb.front(kMmA, inside + kPmdSize - 8, false), nullptr);
  // Gone by a flush of the mm (the 1 GiB entry too: it is filled again),
  // the 2 MiB entry no longer keeps the 1 GiB leaf's front to one page.
  // The same in 4 KiB: an entry anywhere in the 1 GiB range keeps the
  // 2 MiB front to its page.
  tlb.flushMm(kMmA);
  EXPECT_FALSE(tlb.probe(kMmA, giant));
  tlb.insert(kMmA, giant, leaf(PtLevel::kPud, 0x40000));
  ASSERT_EQ(tlb.lookup(kMmA, giant, false)->level, PtLevel::kPud);
  EXPECT_NE(tlb.front(kMmA, inside, false), nullptr);
  tlb.insert(kMmA, inside, leaf(PtLevel::kPmd, 0x800));
  tlb.insert(kMmA, giant + kPudSize - kPageSize, leaf(PtLevel::kPte, 0x9));
  ASSERT_EQ(tlb.lookup(kMmA, inside, false)->level, PtLevel::kPmd);
  EXPECT_EQ(tlb.front(kMmA, inside + kPageSize, false), nullptr);
  EXPECT_EQ(tlb.stats().hits[1].load(), 2U);
  EXPECT_EQ(tlb.stats().hits[2].load(), 2U);
}

TEST(Tlb, AMissIsRememberedOnlyForItsPageItsMmAndUntilAnEntryChanges) {
  testing::BoundContext bound;
  Tlb tlb(tinyGeometry());
  tlb.insert(kMmB, page(5), leaf(PtLevel::kPte, 105));
  // The retry after a page fault looks the page up again: a miss again,
  // counted again, and no other page or mm is taken for it.
  EXPECT_EQ(tlb.lookup(kMmA, page(5), false), nullptr);
  EXPECT_EQ(tlb.lookup(kMmA, page(5), true), nullptr);
  EXPECT_NE(tlb.lookup(kMmB, page(5), false), nullptr);
  EXPECT_EQ(tlb.stats().misses.load(), 2U);
  EXPECT_EQ(tlb.lookup(kMmA, page(5), false), nullptr);
  tlb.insert(kMmA, page(5), leaf(PtLevel::kPte, 205));
  EXPECT_NE(tlb.lookup(kMmA, page(5), false), nullptr);
  // A store through a read-only 4 KiB entry misses and drops it; the
  // 2 MiB entry behind it still answers the next load.
  const VirtAddr huge(0x4020'0000);
  tlb.insert(kMmA, huge, leaf(PtLevel::kPmd, 0x400));
  tlb.insert(kMmA, huge + kPageSize, leaf(PtLevel::kPte, 0x401, false));
  EXPECT_EQ(tlb.lookup(kMmA, huge + kPageSize, true), nullptr);
  const TlbEntry* behind = tlb.lookup(kMmA, huge + kPageSize, false);
  ASSERT_NE(behind, nullptr);
  EXPECT_EQ(behind->level, PtLevel::kPmd);
  EXPECT_EQ(tlb.stats().misses.load(), 4U);
}

// True LRU per set, as the hardware's replacement is specified: a set is
// its (mm, page) pairs, most recently used first.
class LruSets {
 public:
  LruSets(unsigned sets, unsigned ways) : sets_(sets), ways_(ways) {}
  struct Key {
    uint64_t mm;
    uint64_t vpn;
    bool operator==(const Key&) const = default;
  };
  bool holds(Key k) const {
    const std::vector<Key>& set = sets_[setOf(k)];
    return std::find(set.begin(), set.end(), k) != set.end();
  }
  bool use(Key k) {
    std::vector<Key>& set = sets_[setOf(k)];
    auto it = std::find(set.begin(), set.end(), k);
    if (it == set.end()) return false;
    std::rotate(set.begin(), it, it + 1);
    return true;
  }
  void fill(Key k) {
    if (use(k)) return;
    std::vector<Key>& set = sets_[setOf(k)];
    if (set.size() == ways_) set.pop_back();
    set.insert(set.begin(), k);
  }
  void drop(Key k) {
    std::vector<Key>& set = sets_[setOf(k)];
    set.erase(std::remove(set.begin(), set.end(), k), set.end());
  }
  void dropMm(uint64_t mm) {
    for (std::vector<Key>& set : sets_)
      set.erase(std::remove_if(set.begin(), set.end(), [mm](Key k) { return k.mm == mm; }),
                set.end());
  }

 private:
  size_t setOf(Key k) const { return k.vpn % sets_.size(); }
  std::vector<std::vector<Key>> sets_;
  unsigned ways_;
};

// Loads, stores, fills and invalidations in any order on 4 sets of 6 ways:
// after each, the TLB holds exactly what true LRU holds, so its recency
// order, the reuse of invalidated ways and the fill after a remembered
// miss all replace as LRU does.
RC_GTEST_PROP(TlbProperty, ReplacesAsTrueLruInEverySet, ()) {
  testing::BoundContext bound;
  constexpr unsigned kSets = 4;
  constexpr unsigned kWays = 6;
  constexpr uint64_t kPages = 40;
  Tlb tlb(TlbGeometry{{kSets * kWays, kWays}, {8, 2}, {4, 2}});
  LruSets lru(kSets, kWays);
  std::array<bool, 2 * kPages> writable{};
  const int steps = *rc::gen::inRange(1, 200);
  for (int i = 0; i < steps; ++i) {
    const LruSets::Key k{*rc::gen::inRange<uint64_t>(kMmA, kMmB + 1),
                         *rc::gen::inRange<uint64_t>(0, kPages)};
    bool& w = writable[(k.mm - kMmA) * kPages + k.vpn];  // as last filled
    switch (*rc::gen::inRange(0, 5)) {
      case 0:  // a load
        RC_ASSERT((tlb.lookup(k.mm, page(k.vpn), false) != nullptr) == lru.use(k));
        break;
      case 1: {  // a store: a read-only entry is dropped
        const bool hit = tlb.lookup(k.mm, page(k.vpn), true) != nullptr;
        if (lru.holds(k) && !w) {
          RC_ASSERT(!hit);
          lru.drop(k);
        } else {
          RC_ASSERT(hit == lru.use(k));
        }
        break;
      }
      case 2:
        w = *rc::gen::arbitrary<bool>();
        tlb.insert(k.mm, page(k.vpn), leaf(PtLevel::kPte, k.vpn, w));
        lru.fill(k);
        break;
      case 3:
        tlb.flushRange(k.mm, page(k.vpn), page(k.vpn + 1), kPageShift);
        lru.drop(k);
        break;
      default:
        tlb.flushMm(k.mm);
        lru.dropMm(k.mm);
        break;
    }
    for (uint64_t mm : {kMmA, kMmB})
      for (uint64_t v = 0; v < kPages; ++v)
        RC_ASSERT(tlb.probe(mm, page(v)) == lru.holds(LruSets::Key{mm, v}));
  }
}

TEST(TlbDeathTest, BadGeometryOrLeafIsAModelBug) {
  EXPECT_DEATH(Tlb(TlbGeometry{{12, 4}, {8, 2}, {4, 2}}), "power of two");
  Tlb tlb(tinyGeometry());
  EXPECT_DEATH(tlb.insert(kMmA, VirtAddr(0), leaf(PtLevel::kPmd, 3)), "misaligned");
  EXPECT_DEATH(tlb.insert(uint64_t{1} << Tlb::kMmIdBits, VirtAddr(0), leaf(PtLevel::kPte, 3)),
               "mm id");
}

}  // namespace
}  // namespace vfiomm
