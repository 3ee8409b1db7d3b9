#include "mm/vma_interval_tree.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <ostream>
#include <vector>

namespace vfiomm {
namespace {

// Stands in for vm_area_struct: the tree only cares about its address.
struct FakeVma {
  int id;
};
using Tree = IntervalTree<const FakeVma*>;

struct Entry {
  const FakeVma* vma;
  uint64_t start;
  uint64_t last;
  bool operator==(const Entry&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Entry& e) {
  return os << "vma" << e.vma->id << "[" << e.start << "," << e.last << "]";
}

constexpr uint64_t kMaxPgoff = std::numeric_limits<uint64_t>::max();

std::vector<Entry> overlaps(const Tree& tree, uint64_t first, uint64_t last) {
  std::vector<Entry> out;
  tree.forEachOverlap(first, last, [&](const FakeVma* v, uint64_t s, uint64_t l) {
    out.push_back({v, s, l});
  });
  return out;
}

std::vector<Entry> inOrder(const Tree& tree) {
  std::vector<Entry> out;
  tree.forEach([&](const FakeVma* v, uint64_t s, uint64_t l) { out.push_back({v, s, l}); });
  return out;
}

// Gives each test VMAs with stable addresses and readable ids.
class VmaPool {
 public:
  const FakeVma* make() { return &vmas_.emplace_back(FakeVma{static_cast<int>(vmas_.size())}); }

 private:
  std::deque<FakeVma> vmas_;
};

TEST(IntervalTree, EmptyTreeHasNothingToVisit) {
  const Tree tree;
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.size(), 0U);
  EXPECT_TRUE(tree.verify());
  EXPECT_TRUE(overlaps(tree, 0, kMaxPgoff).empty());
  EXPECT_EQ(tree.overlapVisitCount(0, kMaxPgoff), 0U);
}

TEST(IntervalTree, ClosedIntervalsOverlapAtTheirEdges) {
  VmaPool pool;
  Tree tree;
  const FakeVma* a = pool.make();
  const FakeVma* b = pool.make();
  const FakeVma* c = pool.make();
  const FakeVma* top = pool.make();
  tree.insert(a, 0, 9);
  tree.insert(b, 10, 19);
  tree.insert(c, 20, 20);
  tree.insert(top, kMaxPgoff - 1, kMaxPgoff);
  ASSERT_TRUE(tree.verify());

  const Entry ea{a, 0, 9}, eb{b, 10, 19}, ec{c, 20, 20}, etop{top, kMaxPgoff - 1, kMaxPgoff};
  EXPECT_EQ(overlaps(tree, 9, 20), (std::vector<Entry>{ea, eb, ec}));
  EXPECT_EQ(overlaps(tree, 10, 20), (std::vector<Entry>{eb, ec}));
  EXPECT_EQ(overlaps(tree, 0, 0), (std::vector<Entry>{ea}));
  EXPECT_EQ(overlaps(tree, 19, 19), (std::vector<Entry>{eb}));
  EXPECT_EQ(overlaps(tree, 20, 20), (std::vector<Entry>{ec}));
  EXPECT_TRUE(overlaps(tree, 21, kMaxPgoff - 2).empty());
  EXPECT_EQ(overlaps(tree, kMaxPgoff, kMaxPgoff), (std::vector<Entry>{etop}));
  EXPECT_EQ(overlaps(tree, 0, kMaxPgoff), (std::vector<Entry>{ea, eb, ec, etop}));
}

TEST(IntervalTree, EqualStartsKeepInsertionOrder) {
  VmaPool pool;
  Tree tree;
  std::vector<Entry> expected;
  // Interleave other starts so that the equal ones end up in different
  // subtrees as the tree rebalances.
  for (uint64_t i = 0; i < 24; ++i) {
    const FakeVma* v = pool.make();
    const uint64_t start = i % 3 == 0 ? 100 : i * 10;
    tree.insert(v, start, start + 24 - i);
    ASSERT_TRUE(tree.verify());
    expected.push_back({v, start, start + 24 - i});
  }
  std::stable_sort(expected.begin(), expected.end(),
                   [](const Entry& x, const Entry& y) { return x.start < y.start; });
  EXPECT_EQ(inOrder(tree), expected);
}

TEST(IntervalTree, InsertAfterUsesRightLinkOrLeftmostOfRightSubtree) {
  VmaPool pool;
  Tree tree;
  const FakeVma* parent = pool.make();
  const FakeVma* first = pool.make();
  const FakeVma* second = pool.make();
  tree.insert(parent, 5, 8);
  tree.insertAfter(parent, first, 5, 8);  // parent has no right child yet
  ASSERT_TRUE(tree.verify());
  tree.insertAfter(parent, second, 5, 8);  // now `first` roots parent's right subtree
  ASSERT_TRUE(tree.verify());
  EXPECT_EQ(inOrder(tree), (std::vector<Entry>{{parent, 5, 8}, {second, 5, 8}, {first, 5, 8}}));
}

TEST(IntervalTree, InsertAfterPutsTheChildRightAfterItsParent) {
  VmaPool pool;
  Tree tree;
  std::vector<Entry> expected;
  for (int i = 0; i < 16; ++i) {
    const FakeVma* v = pool.make();
    tree.insert(v, 40, 47);
    expected.push_back({v, 40, 47});
  }
  const FakeVma* below = pool.make();
  const FakeVma* above = pool.make();
  tree.insert(below, 0, 39);
  tree.insert(above, 48, 60);
  expected.insert(expected.begin(), Entry{below, 0, 39});
  expected.push_back({above, 48, 60});

  // Fork every VMA of the equal-start run, then fork some children again.
  for (size_t i = 1; i + 1 < expected.size(); i += 2) {
    const FakeVma* child = pool.make();
    tree.insertAfter(expected[i].vma, child, 40, 47);
    ASSERT_TRUE(tree.verify());
    expected.insert(expected.begin() + static_cast<std::ptrdiff_t>(i) + 1, Entry{child, 40, 47});
    ASSERT_EQ(inOrder(tree), expected);
  }
  for (size_t i = 2; i + 1 < expected.size(); i += 5) {
    const FakeVma* grandchild = pool.make();
    tree.insertAfter(expected[i].vma, grandchild, 40, 47);
    ASSERT_TRUE(tree.verify());
    expected.insert(expected.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                    Entry{grandchild, 40, 47});
    ASSERT_EQ(inOrder(tree), expected);
  }
  EXPECT_EQ(overlaps(tree, 47, 47), std::vector<Entry>(expected.begin() + 1, expected.end() - 1));
}

// Linux's insert_after only raises subtreeLast below prev (fork's child has
// prev's `last`); the model must also raise prev's ancestors, or a query
// above their old max would prune the child away.
TEST(IntervalTree, InsertAfterWithLongerIntervalRaisesEveryAncestor) {
  VmaPool pool;
  Tree tree;
  const FakeVma* low = pool.make();
  const FakeVma* mid = pool.make();
  const FakeVma* high = pool.make();
  const FakeVma* child = pool.make();
  tree.insert(low, 5, 5);
  tree.insert(mid, 6, 6);  // becomes the root, with `low` as its left child
  tree.insert(high, 7, 7);
  tree.insertAfter(low, child, 5, 100);
  ASSERT_TRUE(tree.verify());
  EXPECT_EQ(overlaps(tree, 50, 60), (std::vector<Entry>{{child, 5, 100}}));
}

TEST(IntervalTree, EraseKeepsTheOrderOfTheRest) {
  VmaPool pool;
  Tree tree;
  std::vector<Entry> expected;
  for (uint64_t i = 0; i < 64; ++i) {
    const FakeVma* v = pool.make();
    const uint64_t start = (i * 7) % 8;  // eight runs of equal starts
    tree.insert(v, start, start + i % 5);
    expected.push_back({v, start, start + i % 5});
  }
  std::stable_sort(expected.begin(), expected.end(),
                   [](const Entry& x, const Entry& y) { return x.start < y.start; });
  ASSERT_EQ(inOrder(tree), expected);

  // Erase in a scattered order so that leaves, inner nodes and the root go.
  while (!expected.empty()) {
    const size_t victim = (expected.size() * 5) / 7;
    tree.erase(expected[victim].vma);
    EXPECT_FALSE(tree.contains(expected[victim].vma));
    expected.erase(expected.begin() + static_cast<std::ptrdiff_t>(victim));
    ASSERT_TRUE(tree.verify());
    ASSERT_EQ(tree.size(), expected.size());
    ASSERT_EQ(inOrder(tree), expected);
  }
  EXPECT_TRUE(tree.empty());
}

TEST(IntervalTree, EraseLowersTheCachedSubtreeLast) {
  VmaPool pool;
  Tree tree;
  const FakeVma* longest = pool.make();
  tree.insert(longest, 3, 1000);
  for (uint64_t i = 0; i < 20; ++i) tree.insert(pool.make(), i * 4, i * 4 + 1);
  tree.erase(longest);
  ASSERT_TRUE(tree.verify());
  EXPECT_TRUE(overlaps(tree, 500, 600).empty());
  // With the long interval gone, a query past every remaining interval is
  // pruned at the root.
  EXPECT_EQ(tree.overlapVisitCount(500, 600), 1U);
}

TEST(IntervalTree, ContainsTracksMembership) {
  VmaPool pool;
  Tree tree;
  const FakeVma* a = pool.make();
  const FakeVma* b = pool.make();
  tree.insert(a, 1, 2);
  EXPECT_TRUE(tree.contains(a));
  EXPECT_FALSE(tree.contains(b));
  tree.erase(a);
  EXPECT_FALSE(tree.contains(a));
}

TEST(IntervalTree, PointQueryVisitsLogarithmicallyManyNodes) {
  VmaPool pool;
  Tree tree;
  constexpr uint64_t kItems = 10000;
  for (uint64_t i = 0; i < kItems; ++i) tree.insert(pool.make(), i * 4, i * 4 + 2);
  ASSERT_TRUE(tree.verify());

  for (const uint64_t point : {uint64_t{0}, uint64_t{2}, uint64_t{3}, kItems * 2 + 1,
                               kItems * 4 - 2, kItems * 4, kMaxPgoff}) {
    SCOPED_TRACE(point);
    const std::vector<Entry> hits = overlaps(tree, point, point);
    const bool inGap = point % 4 == 3 || point >= kItems * 4;
    ASSERT_EQ(hits.size(), inGap ? 0U : 1U);
    if (!inGap) {
      EXPECT_EQ(hits[0].start, point / 4 * 4);
    }
    EXPECT_LT(tree.overlapVisitCount(point, point), 100U);
  }
  // The counter counts: a query covering everything examines every node.
  EXPECT_EQ(tree.overlapVisitCount(0, kMaxPgoff), kItems);
}

TEST(IntervalTreeDeathTest, MisuseIsABug) {
  VmaPool pool;
  Tree tree;
  const FakeVma* a = pool.make();
  const FakeVma* b = pool.make();
  tree.insert(a, 4, 8);
  EXPECT_DEATH(tree.insert(a, 4, 8), "already in the tree");
  EXPECT_DEATH(tree.insertAfter(a, b, 5, 8), "insertAfter needs prev's start");
  EXPECT_DEATH(tree.erase(b), "not in the tree");
  EXPECT_DEATH(tree.insert(b, 9, 8), "start <= last");
}

// One step of a random history. `pick` chooses among the items present and
// stays meaningful as shrinking removes earlier steps.
struct Op {
  enum Kind : int { kInsert = 0, kInsertAfter = 1, kErase = 2 };
  int kind;
  uint64_t start;
  uint64_t length;
  size_t pick;
  uint64_t queryFirst;
  uint64_t querySpan;
};

std::ostream& operator<<(std::ostream& os, const Op& op) {
  return os << "Op{kind=" << op.kind << " start=" << op.start << " length=" << op.length
            << " pick=" << op.pick << " query=" << op.queryFirst << "+" << op.querySpan << "}";
}

rc::Gen<Op> genOp() {
  return rc::gen::build<Op>(rc::gen::set(&Op::kind, rc::gen::inRange(0, 3)),
                            rc::gen::set(&Op::start, rc::gen::inRange<uint64_t>(0, 48)),
                            rc::gen::set(&Op::length, rc::gen::inRange<uint64_t>(0, 24)),
                            rc::gen::set(&Op::pick, rc::gen::arbitrary<size_t>()),
                            rc::gen::set(&Op::queryFirst, rc::gen::inRange<uint64_t>(0, 80)),
                            rc::gen::set(&Op::querySpan, rc::gen::inRange<uint64_t>(0, 16)));
}

// The order the tree must produce: by start, an insert after all equal
// starts, an insertAfter right behind its prev.
class BruteForceModel {
 public:
  void insert(Entry e) {
    auto pos = std::upper_bound(entries_.begin(), entries_.end(), e.start,
                                [](uint64_t s, const Entry& x) { return s < x.start; });
    entries_.insert(pos, e);
  }
  void insertAfter(size_t prevIndex, Entry e) {
    entries_.insert(entries_.begin() + static_cast<std::ptrdiff_t>(prevIndex) + 1, e);
  }
  void erase(size_t index) {
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(index));
  }

  std::vector<Entry> overlaps(uint64_t first, uint64_t last) const {
    std::vector<Entry> out;
    for (const Entry& e : entries_)
      if (e.start <= last && first <= e.last) out.push_back(e);
    return out;
  }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

void apply(const Op& op, VmaPool& pool, Tree& tree, BruteForceModel& model) {
  const size_t n = model.entries().size();
  const int kind = n == 0 ? Op::kInsert : op.kind;
  if (kind == Op::kInsert) {
    const Entry e{pool.make(), op.start, op.start + op.length};
    tree.insert(e.vma, e.start, e.last);
    model.insert(e);
  } else if (kind == Op::kInsertAfter) {
    const size_t prev = op.pick % n;
    const uint64_t start = model.entries()[prev].start;
    const Entry e{pool.make(), start, start + op.length};
    tree.insertAfter(model.entries()[prev].vma, e.vma, e.start, e.last);
    model.insertAfter(prev, e);
  } else {
    const size_t victim = op.pick % n;
    tree.erase(model.entries()[victim].vma);
    model.erase(victim);
  }
}

RC_GTEST_PROP(IntervalTreeProperty, MatchesBruteForceModel, ()) {
  const auto ops = *rc::gen::container<std::vector<Op>>(genOp());
  VmaPool pool;
  Tree tree;
  BruteForceModel model;
  for (const Op& op : ops) {
    apply(op, pool, tree, model);
    RC_ASSERT(tree.verify());
    RC_ASSERT(tree.size() == model.entries().size());
    RC_ASSERT(inOrder(tree) == model.entries());
    const uint64_t first = op.queryFirst;
    const uint64_t last = first + op.querySpan;
    RC_ASSERT(overlaps(tree, first, last) == model.overlaps(first, last));
    RC_ASSERT(overlaps(tree, first, first) == model.overlaps(first, first));
    RC_ASSERT(overlaps(tree, first, kMaxPgoff) == model.overlaps(first, kMaxPgoff));
  }
}

// Long ascending and descending runs are the classic way to unbalance a tree
// whose rotations are wrong; the black-height check in verify() catches it.
RC_GTEST_PROP(IntervalTreeProperty, StaysBalancedUnderSortedInsertsAndErases, ()) {
  const auto count = *rc::gen::inRange<uint64_t>(1, 600);
  const bool descending = *rc::gen::arbitrary<bool>();
  VmaPool pool;
  Tree tree;
  std::vector<const FakeVma*> vmas;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t start = descending ? count - i : i;
    vmas.push_back(pool.make());
    tree.insert(vmas.back(), start, start);
  }
  RC_ASSERT(tree.verify());
  // A red-black tree of n nodes is at most 2*log2(n+1) deep, so a point
  // query examines well under 4*log2(n+1)+4 nodes.
  uint64_t bound = 4;
  for (uint64_t n = count + 1; n > 1; n /= 2) bound += 4;
  RC_ASSERT(tree.overlapVisitCount(count / 2, count / 2) <= bound);
  for (size_t i = 0; i < vmas.size(); i += 2) tree.erase(vmas[i]);
  RC_ASSERT(tree.verify());
  RC_ASSERT(tree.size() == vmas.size() / 2);
}

}  // namespace
}  // namespace vfiomm
