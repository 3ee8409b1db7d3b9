#include "mm/page_table.h"

#include <algorithm>

#include "base/assert.h"
#include "base/counter.h"
#include "mm/mmu_gather.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(thpSplitPmd, "mm.thp_split_pmd",
               "huge PMD leaves split by a range boundary; for pfnmaps split = cleared "
               "(vmstat thp_split_pmd)");
VFIOMM_COUNTER(thpSplitPud, "mm.thp_split_pud",
               "huge PUD leaves split by a range boundary (vmstat thp_split_pud)");

constexpr PtLevel below(PtLevel l) { return static_cast<PtLevel>(static_cast<uint8_t>(l) - 1); }
constexpr size_t levelIndex(PtLevel l) { return static_cast<size_t>(l); }

// Span of entry `idx` of a table of `level` whose first entry maps `base`.
constexpr uint64_t entryStart(VirtAddr base, PtLevel level, unsigned idx) {
  return base.value() + uint64_t{idx} * levelSize(level);
}

// First and one-past-last entry index of a table at `base` overlapping [start, end).
struct IndexRange {
  unsigned first;
  unsigned last;  // exclusive
};
IndexRange overlap(VirtAddr base, PtLevel level, VirtAddr start, VirtAddr end) {
  const uint64_t span = levelSize(level) * kPtrsPerTable;
  const uint64_t lo = std::max(start.value(), base.value());
  const uint64_t hi = std::min(end.value(), base.value() + span);
  if (lo >= hi) return {0, 0};
  const unsigned shift = levelShift(level);
  return {static_cast<unsigned>((lo - base.value()) >> shift),
          static_cast<unsigned>((hi - base.value() + levelSize(level) - 1) >> shift)};
}

}  // namespace

PageTable::PageTable() : pgd_(PageTableArena::global().alloc()) {}

PageTable::~PageTable() {
  freeSubtree(pgd_, PtLevel::kPgd);
  PageTableArena::global().free(pgd_);
}

void PageTable::accountTable(PtLevel level, int delta) {
  const auto d = static_cast<uint64_t>(static_cast<int64_t>(delta));
  tablePages_[levelIndex(level)].fetch_add(d, std::memory_order_relaxed);
  pgtablesBytes_.fetch_add(d * kPageTableBytes, std::memory_order_relaxed);
}

uint64_t PageTable::tablePages(PtLevel level) const {
  return tablePages_[levelIndex(level)].load(std::memory_order_relaxed);
}

uint64_t PageTable::hostBytes() const {
  uint64_t pages = 1;  // the PGD
  for (const auto& n : tablePages_) pages += n.load(std::memory_order_relaxed);
  return pages * PageTableArena::kBytesPerPage;
}

PageTablePage* PageTable::allocTable(PtLevel level) {
  if (allocFails_ && allocFails_(level)) return nullptr;
  PageTablePage* t = PageTableArena::global().alloc();
  accountTable(level, +1);
  return t;
}

SpinLock& PageTable::lockForTable(PageTablePage* table, PtLevel level) {
  // x86-64: PGD and PUD entries are covered by mm->page_table_lock; PMD and
  // PTE tables have split locks (USE_SPLIT_PMD_PTLOCKS).
  if (level >= PtLevel::kPud) return pageTableLock_;
  return PageTableArena::ptl(table);
}

SpinLock& PageTable::ptlFor(const Slot& slot) { return lockForTable(slot.table, slot.level); }

PageTable::Translation PageTable::translate(VirtAddr va) const {
  const PageTablePage* t = pgd_;
  for (PtLevel level = PtLevel::kPgd;; level = below(level)) {
    const uint64_t e = t->entries[va.tableIndex(level)].load(std::memory_order_acquire);
    if (!pte::isPresent(e)) return {};
    if (level == PtLevel::kPte || (level != PtLevel::kPgd && pte::isHugeLeaf(e))) {
      // The MMU ignores the pfn bits below the leaf's size (mm-pfnmap.md §8.4).
      const uint64_t pages = levelSize(level) >> kPageShift;
      const uint64_t base = pte::pfnOf(e).value() & ~(pages - 1);
      const uint64_t index = (va.value() & (levelSize(level) - 1)) >> kPageShift;
      return {true, level, e, Pfn(base + index)};
    }
    t = pte::tableOf(e);
  }
}

PageTable::WalkStatus PageTable::slotAt(VirtAddr va, PtLevel level, bool alloc, Slot* out) {
  PageTablePage* t = pgd_;
  for (PtLevel l = PtLevel::kPgd; l > level; l = below(l)) {
    std::atomic<uint64_t>& slot = t->entries[va.tableIndex(l)];
    uint64_t e = slot.load(std::memory_order_acquire);
    if (l != PtLevel::kPgd && pte::isHugeLeaf(e)) return WalkStatus::kHugeAbove;
    if (!pte::isPresent(e)) {
      if (!alloc) return WalkStatus::kAbsent;
      PageTablePage* fresh = allocTable(below(l));
      if (fresh == nullptr) return WalkStatus::kNoMem;
      {
        // __pte_alloc / __pmd_alloc: install only if still empty; a racing
        // fault may have installed a table or a huge leaf meanwhile.
        SpinGuard guard(lockForTable(t, l));
        if (pte::isNone(slot.load(std::memory_order_relaxed))) {
          slot.store(pte::makeTable(fresh), std::memory_order_release);
          fresh = nullptr;
        }
      }
      if (fresh != nullptr) {
        PageTableArena::global().free(fresh);
        accountTable(below(l), -1);
      }
      e = slot.load(std::memory_order_acquire);
      if (pte::isHugeLeaf(e)) return WalkStatus::kHugeAbove;
    }
    t = pte::tableOf(e);
  }
  *out = Slot{&t->entries[va.tableIndex(level)], t, level};
  return WalkStatus::kOk;
}

LeafCounts PageTable::zapRange(VirtAddr start, VirtAddr end, MmuGather& tlb) {
  return zapTable(pgd_, PtLevel::kPgd, VirtAddr(0), start, end, tlb);
}

LeafCounts PageTable::zapTable(PageTablePage* table, PtLevel level, VirtAddr base, VirtAddr start,
                               VirtAddr end, MmuGather& tlb) {
  LeafCounts cleared;
  const IndexRange r = overlap(base, level, start, end);
  if (r.first >= r.last) return cleared;
  if (level == PtLevel::kPte) {
    // zap_pte_range: one PTL hold for the whole table.
    SpinGuard guard(PageTableArena::ptl(table));
    for (unsigned i = r.first; i < r.last; ++i) {
      if (pte::isNone(table->entries[i].exchange(0, std::memory_order_acq_rel))) continue;
      const VirtAddr a(entryStart(base, level, i));
      tlb.addRange(a, a + kPageSize, level);
      ++cleared.pte;
    }
    return cleared;
  }
  for (unsigned i = r.first; i < r.last; ++i) {
    std::atomic<uint64_t>& slot = table->entries[i];
    const uint64_t e = slot.load(std::memory_order_acquire);
    if (!pte::isPresent(e)) continue;
    const VirtAddr a(entryStart(base, level, i));
    if (pte::isTable(e) || level == PtLevel::kPgd) {
      cleared += zapTable(pte::tableOf(e), below(level), a, start, end, tlb);
      continue;
    }
    // zap_huge_pmd / zap_huge_pud, or __split_huge_* when only partly
    // covered: for a special leaf both clear it.
    SpinGuard guard(lockForTable(table, level));
    if (!pte::isHugeLeaf(slot.load(std::memory_order_relaxed))) continue;
    slot.store(0, std::memory_order_release);
    tlb.addRange(a, a + levelSize(level), level);
    const bool partial = a < start || a + levelSize(level) > end;
    if (level == PtLevel::kPmd) {
      ++cleared.pmd;
      if (partial) thpSplitPmd.add();
    } else {
      ++cleared.pud;
      if (partial) thpSplitPud.add();
    }
  }
  return cleared;
}

void PageTable::splitHugeAt(VirtAddr addr, MmuGather& tlb) {
  for (PtLevel level : {PtLevel::kPud, PtLevel::kPmd}) {
    if (addr.isAligned(levelSize(level))) continue;
    Slot s;
    if (slotAt(addr, level, false, &s) != WalkStatus::kOk) return;
    SpinGuard guard(ptlFor(s));
    if (!pte::isHugeLeaf(s.entry->load(std::memory_order_relaxed))) continue;
    s.entry->store(0, std::memory_order_release);
    const VirtAddr a = addr.alignDown(levelSize(level));
    tlb.addRange(a, a + levelSize(level), level);
    (level == PtLevel::kPmd ? thpSplitPmd : thpSplitPud).add();
  }
}

PageTable::WalkStatus PageTable::copyRange(PageTable& dst, VirtAddr start, VirtAddr end) const {
  WalkStatus status = WalkStatus::kOk;
  // The parent's mmap_lock is held for write, so its tables stay; a zap may
  // still clear leaves, hence the re-read under the source lock.
  auto* self = const_cast<PageTable*>(this);
  walkLeaves(pgd_, PtLevel::kPgd, VirtAddr(0), start, end,
             [&](VirtAddr va, PtLevel level, uint64_t) {
               if (status != WalkStatus::kOk) return;
               Slot d;
               Slot s;
               status = dst.slotAt(va, level, true, &d);
               if (status != WalkStatus::kOk) return;
               if (self->slotAt(va, level, false, &s) != WalkStatus::kOk) return;
               // copy_pte_range: the child's lock, then the parent's nested.
               SpinGuard dstGuard(dst.ptlFor(d));
               SpinGuard srcGuard(self->ptlFor(s), 1);
               const uint64_t e = s.entry->load(std::memory_order_relaxed);
               if (!pte::isPresent(e)) return;
               // Shared mapping: keep the write bit; mark the copy old.
               d.entry->store(e & ~pte::kAccessed, std::memory_order_release);
             });
  return status;
}

PageTable::WalkStatus PageTable::moveRange(VirtAddr from, VirtAddr to, uint64_t len,
                                           MmuGather& tlb) {
  WalkStatus status = WalkStatus::kOk;
  walkLeaves(pgd_, PtLevel::kPgd, VirtAddr(0), from, from + len,
             [&](VirtAddr va, PtLevel level, uint64_t) {
               if (status != WalkStatus::kOk) return;
               const uint64_t size = levelSize(level);
               const VirtAddr target = to + (va - from);
               Slot s;
               if (slotAt(va, level, false, &s) != WalkStatus::kOk) return;
               uint64_t e;
               {
                 SpinGuard guard(ptlFor(s));
                 e = s.entry->exchange(0, std::memory_order_acq_rel);
               }
               if (!pte::isPresent(e)) return;
               tlb.addRange(va, va + size, level);
               const bool whole = va >= from && va + size <= from + len;
               if (level != PtLevel::kPte && (!whole || !target.isAligned(size))) {
                 // move_huge_pmd cannot: split (clear) and let it refault.
                 (level == PtLevel::kPmd ? thpSplitPmd : thpSplitPud).add();
                 return;
               }
               Slot d;
               status = slotAt(target, level, true, &d);
               if (status != WalkStatus::kOk) return;
               SpinGuard guard(ptlFor(d));
               d.entry->store(e, std::memory_order_release);
             });
  return status;
}

LeafCounts PageTable::changeProtection(VirtAddr start, VirtAddr end, uint64_t prot,
                                       MmuGather& tlb) {
  return protectTable(pgd_, PtLevel::kPgd, VirtAddr(0), start, end, prot, tlb);
}

LeafCounts PageTable::protectTable(PageTablePage* table, PtLevel level, VirtAddr base,
                                   VirtAddr start, VirtAddr end, uint64_t prot, MmuGather& tlb) {
  LeafCounts changed;
  const IndexRange r = overlap(base, level, start, end);
  for (unsigned i = r.first; i < r.last; ++i) {
    std::atomic<uint64_t>& slot = table->entries[i];
    const uint64_t e = slot.load(std::memory_order_acquire);
    if (!pte::isPresent(e)) continue;
    const VirtAddr a(entryStart(base, level, i));
    if (level != PtLevel::kPte && (pte::isTable(e) || level == PtLevel::kPgd)) {
      changed += protectTable(pte::tableOf(e), below(level), a, start, end, prot, tlb);
      continue;
    }
    SpinGuard guard(lockForTable(table, level));
    const uint64_t cur = slot.load(std::memory_order_relaxed);
    if (!pte::isPresent(cur)) continue;
    slot.store((cur & ~pte::kProtMask) | (prot & pte::kProtMask), std::memory_order_release);
    tlb.addRange(a, a + levelSize(level), level);
    (level == PtLevel::kPte ? changed.pte : level == PtLevel::kPmd ? changed.pmd : changed.pud)++;
  }
  return changed;
}

void PageTable::freePgtables(VirtAddr start, VirtAddr end, VirtAddr floor, VirtAddr ceiling,
                             MmuGather& tlb) {
  freeTables(pgd_, PtLevel::kPgd, VirtAddr(0), start, end, floor, ceiling, tlb);
}

void PageTable::freeTables(PageTablePage* table, PtLevel level, VirtAddr base, VirtAddr start,
                           VirtAddr end, VirtAddr floor, VirtAddr ceiling, MmuGather& tlb) {
  if (level == PtLevel::kPte) return;
  const IndexRange r = overlap(base, level, start, end);
  for (unsigned i = r.first; i < r.last; ++i) {
    std::atomic<uint64_t>& slot = table->entries[i];
    const uint64_t e = slot.load(std::memory_order_acquire);
    if (!pte::isTable(e) || (level != PtLevel::kPgd && pte::isHugeLeaf(e))) continue;
    const VirtAddr a(entryStart(base, level, i));
    PageTablePage* child = pte::tableOf(e);
    freeTables(child, below(level), a, start, end, floor, ceiling, tlb);
    // Only a table whose whole span lies in the hole between the remaining
    // VMAs goes; one shared with a neighbour stays (free_pgd_range).
    if (a < floor || a + levelSize(level) > ceiling) continue;
    {
      SpinGuard guard(lockForTable(table, level));
      slot.store(0, std::memory_order_release);
    }
    tlb.removeTable(child);
    accountTable(below(level), -1);
  }
}

void PageTable::freeSubtree(PageTablePage* table, PtLevel level) {
  if (level == PtLevel::kPte) return;
  for (auto& slot : table->entries) {
    const uint64_t e = slot.load(std::memory_order_relaxed);
    if (!pte::isTable(e) || (level != PtLevel::kPgd && pte::isHugeLeaf(e))) continue;
    freeSubtree(pte::tableOf(e), below(level));
    PageTableArena::global().free(pte::tableOf(e));
    accountTable(below(level), -1);
    slot.store(0, std::memory_order_relaxed);
  }
}

void PageTable::forEachLeaf(VirtAddr start, VirtAddr end,
                            const std::function<void(VirtAddr, PtLevel, uint64_t)>& fn) const {
  walkLeaves(pgd_, PtLevel::kPgd, VirtAddr(0), start, end, fn);
}

void PageTable::walkLeaves(const PageTablePage* table, PtLevel level, VirtAddr base,
                           VirtAddr start, VirtAddr end,
                           const std::function<void(VirtAddr, PtLevel, uint64_t)>& fn) const {
  const IndexRange r = overlap(base, level, start, end);
  for (unsigned i = r.first; i < r.last; ++i) {
    const uint64_t e = table->entries[i].load(std::memory_order_acquire);
    if (!pte::isPresent(e)) continue;
    const VirtAddr a(entryStart(base, level, i));
    if (level == PtLevel::kPte || (level != PtLevel::kPgd && pte::isHugeLeaf(e)))
      fn(a, level, e);
    else
      walkLeaves(pte::tableOf(e), below(level), a, start, end, fn);
  }
}

}  // namespace vfiomm
