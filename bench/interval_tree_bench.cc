#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "mm/vma_interval_tree.h"

namespace vfiomm {
namespace {

struct FakeVma {
  uint64_t id;
};
using Tree = IntervalTree<const FakeVma*>;

// Mappings of a BAR laid out as disjoint 8-page windows 16 pages apart, the
// shape of many small VMAs over one device file.
constexpr uint64_t kStride = 16;
constexpr uint64_t kWindow = 8;

std::vector<FakeVma> makeVmas(uint64_t n) {
  std::vector<FakeVma> vmas(n);
  for (uint64_t i = 0; i < n; ++i) vmas[i].id = i;
  return vmas;
}

void fill(Tree& tree, const std::vector<FakeVma>& vmas) {
  for (const FakeVma& v : vmas) tree.insert(&v, v.id * kStride, v.id * kStride + kWindow - 1);
}

// The cost of mmap()+munmap() linking one VMA into a populated i_mmap tree.
void BM_IntervalTreeInsertErase(benchmark::State& state) {
  const auto n = static_cast<uint64_t>(state.range(0));
  const std::vector<FakeVma> vmas = makeVmas(n);
  Tree tree;
  fill(tree, vmas);
  const FakeVma extra{n};
  uint64_t i = 0;
  for (auto _ : state) {
    // Walk the key space with an odd stride so each insert lands elsewhere.
    const uint64_t start = (i * 7919 % n) * kStride + kWindow;
    tree.insert(&extra, start, start + kWindow - 1);
    tree.erase(&extra);
    ++i;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_IntervalTreeInsertErase)->Arg(4096)->Arg(65536);

// unmap_mapping_range() of a single page: a point query.
void BM_IntervalTreeQuery(benchmark::State& state) {
  const auto n = static_cast<uint64_t>(state.range(0));
  const std::vector<FakeVma> vmas = makeVmas(n);
  Tree tree;
  fill(tree, vmas);
  uint64_t i = 0;
  uint64_t hits = 0;
  for (auto _ : state) {
    const uint64_t page = (i * 7919 % n) * kStride + i % kStride;
    tree.forEachOverlap(page, page, [&](const FakeVma*, uint64_t, uint64_t) { ++hits; });
    ++i;
  }
  benchmark::DoNotOptimize(hits);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["visits"] =
      static_cast<double>(tree.overlapVisitCount(n / 2 * kStride, n / 2 * kStride));
}
BENCHMARK(BM_IntervalTreeQuery)->Arg(4096)->Arg(65536);

}  // namespace
}  // namespace vfiomm
