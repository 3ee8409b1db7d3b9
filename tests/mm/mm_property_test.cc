// Random mmap/munmap/mprotect/mremap sequences against a page-granular
// reference model of the address space.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "bound_context.h"
#include "pfnmap_fixture.h"

namespace vfiomm::testing {
namespace {

struct ModelPage {
  uint64_t filePage;  // expected linear_page_index
  int prot;
};

constexpr uint64_t kWindow = 0x7f0000000000;
constexpr uint64_t kWindowPages = 64;

void checkLayout(Mm& mm, const std::map<uint64_t, ModelPage>& model) {
  const auto vmas = mm.vmaSnapshot();
  RC_ASSERT(mm.mapCount() == vmas.size());
  std::map<uint64_t, ModelPage> seen;
  uint64_t lastEnd = 0;
  for (const VmaSnapshot& v : vmas) {
    RC_ASSERT(v.start.value() >= lastEnd);  // sorted, disjoint
    RC_ASSERT(v.start < v.end);
    lastEnd = v.end.value();
    const int p =
        ((v.flags & vm::kRead) ? prot::kRead : 0) | ((v.flags & vm::kWrite) ? prot::kWrite : 0);
    for (uint64_t a = v.start.value(); a < v.end.value(); a += kPageSize)
      seen[a] = ModelPage{v.pgoff.value() + ((a - v.start.value()) >> kPageShift), p};
  }
  RC_ASSERT(seen.size() == model.size());
  for (const auto& [a, page] : model) {
    auto it = seen.find(a);
    RC_ASSERT(it != seen.end());
    RC_ASSERT(it->second.filePage == page.filePage);
    RC_ASSERT(it->second.prot == page.prot);
  }
}

RC_GTEST_PROP(MmProperty, SyscallSequencesMatchAPageModel, ()) {
  testing::BoundContext bound;
  Machine machine;
  auto profile = *KernelProfile::byName(*rc::gen::element<std::string>("linux-6.1", "linux-6.12"));
  Mm mm(machine, profile.mm);
  auto bar = std::make_shared<FakeBarFile>(PhysAddr(0x40'0000'0000), 1ULL << 30, false);
  std::map<uint64_t, ModelPage> model;
  const int steps = *rc::gen::inRange(1, 40);
  for (int i = 0; i < steps; ++i) {
    const uint64_t page = *rc::gen::inRange<uint64_t>(0, kWindowPages);
    const uint64_t pages = *rc::gen::inRange<uint64_t>(1, kWindowPages - page + 1);
    const uint64_t start = kWindow + page * kPageSize;
    const uint64_t len = pages * kPageSize;
    switch (*rc::gen::inRange(0, 4)) {
      case 0: {  // mmap MAP_FIXED of the BAR at some file page
        const uint64_t filePage = *rc::gen::inRange<uint64_t>(0, 1024);
        const int p = *rc::gen::element(prot::kRead, prot::kRead | prot::kWrite);
        auto r =
            mm.mmap(VirtAddr(start), len, p, map::kShared | map::kFixed, bar, filePage * kPageSize);
        RC_ASSERT(r.has_value());
        for (uint64_t k = 0; k < pages; ++k)
          model[start + k * kPageSize] = ModelPage{filePage + k, p};
        break;
      }
      case 1: {
        RC_ASSERT(mm.munmap(VirtAddr(start), len).has_value());
        for (uint64_t k = 0; k < pages; ++k) model.erase(start + k * kPageSize);
        break;
      }
      case 2: {
        const int p = *rc::gen::element(prot::kRead, prot::kRead | prot::kWrite);
        bool covered = true;
        for (uint64_t k = 0; k < pages; ++k) covered &= model.count(start + k * kPageSize) == 1;
        auto r = mm.mprotect(VirtAddr(start), len, p);
        RC_ASSERT(r.has_value() == covered);
        // do_mprotect_pkey() changes VMA by VMA: a hole stops it after the
        // pages before it have their new protection.
        for (uint64_t k = 0; k < pages; ++k) {
          auto it = model.find(start + k * kPageSize);
          if (it == model.end()) break;
          it->second.prot = p;
        }
        break;
      }
      default: {  // move a mapped range elsewhere in the window
        auto it = model.find(start);
        if (it == model.end()) break;
        // The range must lie in one VMA: stop at the first break in pages.
        uint64_t n = 1;
        while (n < pages) {
          auto next = model.find(start + n * kPageSize);
          if (next == model.end() || next->second.filePage != it->second.filePage + n ||
              next->second.prot != it->second.prot)
            break;
          ++n;
        }
        const uint64_t to =
            kWindow + (kWindowPages + 8 + *rc::gen::inRange<uint64_t>(0, 64)) * kPageSize;
        auto r = mm.mremap(VirtAddr(start), n * kPageSize, n * kPageSize,
                           mremap::kMayMove | mremap::kFixed, VirtAddr(to));
        // mremap_to() unmaps the destination before it checks the source,
        // so even a refusal (the pages belong to two VMAs after all) has
        // emptied it.
        for (auto it2 = model.begin(); it2 != model.end();)
          it2 = (it2->first >= to && it2->first < to + n * kPageSize) ? model.erase(it2)
                                                                      : std::next(it2);
        if (!r.has_value()) break;
        std::map<uint64_t, ModelPage> moved;
        for (uint64_t k = 0; k < n; ++k) {
          moved[to + k * kPageSize] = model[start + k * kPageSize];
          model.erase(start + k * kPageSize);
        }
        model.insert(moved.begin(), moved.end());
        break;
      }
    }
    checkLayout(mm, model);
  }
  mm.exitMmap();
  RC_ASSERT(mm.pageTable().pgtablesBytes() == 0U);
  ReadGuard g(bar->mapping()->iMmapRwsem());
  RC_ASSERT(bar->mapping()->vmaCount() == 0U);
}

}  // namespace
}  // namespace vfiomm::testing
