#include "mm/page_table.h"

#include <array>

#include "base/assert.h"
#include "base/counter.h"
#include "mm/mmu_gather.h"
#include "mm/page_table_walk.h"
#include "sync/sched_hook.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(thpSplitPmd, "mm.thp_split_pmd",
               "huge PMD leaves split by a range boundary; for pfnmaps split = cleared "
               "(vmstat thp_split_pmd)");
VFIOMM_COUNTER(thpSplitPud, "mm.thp_split_pud",
               "huge PUD leaves split by a range boundary (vmstat thp_split_pud)");

using WalkStatus = PageTable::WalkStatus;
using Slot = PageTable::Slot;

uint64_t& countOf(LeafCounts& c, PtLevel level) {
  return level == PtLevel::kPte ? c.pte : level == PtLevel::kPmd ? c.pmd : c.pud;
}

void countSplit(PtLevel level) { (level == PtLevel::kPmd ? thpSplitPmd : thpSplitPud).add(); }

// zap_page_range_single's walk (zap_pud_range down to zap_pte_range).
class Zap : public PageTableOperation {
 public:
  Zap(PageTable& pt, VirtAddr start, VirtAddr end, MmuGather& tlb)
      : pt_(pt), start_(start), end_(end), tlb_(tlb) {}

  WalkStatus onEntries(const TableEntries& r) {
    // zap_pte_range: one PTL hold for the whole table. The kernel clears
    // with an atomic exchange because the MMU may set Accessed/Dirty under
    // it; the model's MMU only reads entries and every writer holds the
    // PTL, so a load and a store clear the same entry without the locked
    // instruction.
    SpinGuard guard(pt_.ptlFor(r.slot(r.first)));
    for (unsigned i = r.first; i < r.last; ++i) {
      std::atomic<uint64_t>& entry = r.table->entries[i];
      if (pte::isNone(entry.load(std::memory_order_relaxed))) continue;
      entry.store(0, std::memory_order_release);
      const VirtAddr a = r.addressOf(i);
      tlb_.addRange(a, a + kPageSize, PtLevel::kPte);
      ++cleared_.pte;
    }
    return WalkStatus::kOk;
  }
  // zap_huge_pmd / zap_huge_pud, or __split_huge_* when only partly covered:
  // for a special leaf both clear it.
  WalkStatus onHugeLeaf(const Slot& s, VirtAddr a, uint64_t) {
    SpinGuard guard(pt_.ptlFor(s));
    if (!pte::isHugeLeaf(s.entry->load(std::memory_order_relaxed))) return WalkStatus::kOk;
    s.entry->store(0, std::memory_order_release);
    const uint64_t size = levelSize(s.level);
    tlb_.addRange(a, a + size, s.level);
    ++countOf(cleared_, s.level);
    if (a < start_ || a + size > end_) countSplit(s.level);
    return WalkStatus::kOk;
  }
  LeafCounts cleared() const { return cleared_; }

 private:
  PageTable& pt_;
  const VirtAddr start_;
  const VirtAddr end_;
  MmuGather& tlb_;
  LeafCounts cleared_;
};

// change_protection: every present leaf gets the new protection bits.
class ChangeProtection : public PerLeafOperation<ChangeProtection> {
 public:
  ChangeProtection(PageTable& pt, uint64_t prot, MmuGather& tlb)
      : pt_(pt), prot_(prot), tlb_(tlb) {}

  WalkStatus leaf(const Slot& s, VirtAddr a, uint64_t) {
    SpinGuard guard(pt_.ptlFor(s));
    const uint64_t cur = s.entry->load(std::memory_order_relaxed);
    if (!pte::isPresent(cur)) return WalkStatus::kOk;
    s.entry->store((cur & ~pte::kProtMask) | (prot_ & pte::kProtMask), std::memory_order_release);
    tlb_.addRange(a, a + levelSize(s.level), s.level);
    ++countOf(changed_, s.level);
    return WalkStatus::kOk;
  }
  LeafCounts changed() const { return changed_; }

 private:
  PageTable& pt_;
  const uint64_t prot_;
  MmuGather& tlb_;
  LeafCounts changed_;
};

// Slots of the table a copy or move writes to (fork's child, mremap's
// destination), asked for at ascending addresses. The table that held the
// last slot of each level is kept, so the destination is descended from its
// PGD once per table it uses rather than once per leaf (as move_page_tables
// calls alloc_new_pmd once per extent); tables are still allocated only
// where a leaf lands.
class DestinationSlots {
 public:
  explicit DestinationSlots(PageTable& pt) : pt_(pt) {}

  WalkStatus slotAt(VirtAddr va, PtLevel level, Slot* out) {
    Kept& k = kept_[static_cast<size_t>(level)];
    const VirtAddr base = va.alignDown(levelSize(level) * kPtrsPerTable);
    if (k.table != nullptr && k.base == base) {
      *out = Slot{&k.table->entries[va.tableIndex(level)], k.table, level};
      return WalkStatus::kOk;
    }
    const WalkStatus st = pt_.slotAt(va, level, true, out);
    // Only munmap and exit free tables, and both hold mmap_lock for write
    // as fork and mremap do: a kept table stays linked.
    if (st == WalkStatus::kOk) k = Kept{out->table, base};
    return st;
  }
  PageTable& pageTable() { return pt_; }

 private:
  struct Kept {
    PageTablePage* table = nullptr;
    VirtAddr base;
  };
  PageTable& pt_;
  std::array<Kept, 4> kept_{};  // by level
};

// copy_page_range: the parent's present leaves go to the child, marked old.
class CopyRange : public PerLeafOperation<CopyRange> {
 public:
  CopyRange(PageTable& src, PageTable& dst) : src_(src), dst_(dst) {}

  WalkStatus leaf(const Slot& s, VirtAddr a, uint64_t) {
    // copy_pte_range() lets the locks go between batches (cond_resched()):
    // the parent's entries may change between two copies.
    schedPoint("fork.copy_pte_range");
    Slot d;
    if (const WalkStatus st = dst_.slotAt(a, s.level, &d); st != WalkStatus::kOk) return st;
    // copy_pte_range: the child's lock, then the parent's nested.
    SpinGuard dstGuard(dst_.pageTable().ptlFor(d));
    SpinGuard srcGuard(src_.ptlFor(s), 1);
    const uint64_t e = s.entry->load(std::memory_order_relaxed);
    if (!pte::isPresent(e)) return WalkStatus::kOk;
    // Shared mapping: keep the write bit; mark the copy old.
    d.entry->store(e & ~pte::kAccessed, std::memory_order_release);
    return WalkStatus::kOk;
  }

 private:
  PageTable& src_;
  DestinationSlots dst_;
};

// move_page_tables: the present leaves of [from, from + len) go to
// [to, to + len) of the same table.
class MoveRange : public PerLeafOperation<MoveRange> {
 public:
  MoveRange(PageTable& pt, VirtAddr from, VirtAddr to, uint64_t len, MmuGather& tlb)
      : pt_(pt), dst_(pt), from_(from), to_(to), len_(len), tlb_(tlb) {}

  WalkStatus leaf(const Slot& s, VirtAddr va, uint64_t) {
    const uint64_t size = levelSize(s.level);
    uint64_t e;
    {
      SpinGuard guard(pt_.ptlFor(s));
      e = s.entry->exchange(0, std::memory_order_acq_rel);
    }
    if (!pte::isPresent(e)) return WalkStatus::kOk;
    tlb_.addRange(va, va + size, s.level);
    const VirtAddr target = to_ + (va - from_);
    const bool whole = va >= from_ && va + size <= from_ + len_;
    if (s.level != PtLevel::kPte && (!whole || !target.isAligned(size))) {
      // move_huge_pmd cannot: split (clear) and let it refault.
      countSplit(s.level);
      return WalkStatus::kOk;
    }
    Slot d;
    if (const WalkStatus st = dst_.slotAt(target, s.level, &d); st != WalkStatus::kOk) return st;
    SpinGuard guard(pt_.ptlFor(d));
    d.entry->store(e, std::memory_order_release);
    return WalkStatus::kOk;
  }

 private:
  PageTable& pt_;
  DestinationSlots dst_;
  const VirtAddr from_;
  const VirtAddr to_;
  const uint64_t len_;
  MmuGather& tlb_;
};

// forEachLeaf(): hands every present leaf to a callback.
class VisitLeaves : public PerLeafOperation<VisitLeaves> {
 public:
  explicit VisitLeaves(const std::function<void(VirtAddr, PtLevel, uint64_t)>& fn) : fn_(fn) {}

  WalkStatus leaf(const Slot& s, VirtAddr a, uint64_t e) {
    fn_(a, s.level, e);
    return WalkStatus::kOk;
  }

 private:
  const std::function<void(VirtAddr, PtLevel, uint64_t)>& fn_;
};

}  // namespace

// free_pgd_range: on the way up, every table whose whole span lies in the
// hole [floor, ceiling) is unlinked; its page goes after the gather's flush.
// One shared with a neighbouring VMA stays.
class PageTable::FreeTablesOp : public PageTableOperation {
 public:
  FreeTablesOp(PageTable& pt, VirtAddr floor, VirtAddr ceiling, MmuGather& tlb)
      : pt_(pt), floor_(floor), ceiling_(ceiling), tlb_(tlb) {}

  void onTableDone(const Slot& s, VirtAddr a, uint64_t e) {
    if (a < floor_ || a + levelSize(s.level) > ceiling_) return;
    {
      SpinGuard guard(pt_.ptlFor(s));
      s.entry->store(0, std::memory_order_release);
    }
    tlb_.removeTable(pte::tableOf(e));
    pt_.accountTable(levelBelow(s.level), -1);
  }

 private:
  PageTable& pt_;
  const VirtAddr floor_;
  const VirtAddr ceiling_;
  MmuGather& tlb_;
};

// The end of exit_mmap(): nothing can walk the tables any more, so each goes
// straight back to the arena.
class PageTable::FreeEveryTableOp : public PageTableOperation {
 public:
  explicit FreeEveryTableOp(PageTable& pt) : pt_(pt) {}

  void onTableDone(const Slot& s, VirtAddr, uint64_t e) {
    pt_.freeTable(pte::tableOf(e), levelBelow(s.level));
    s.entry->store(0, std::memory_order_relaxed);
  }

 private:
  PageTable& pt_;
};

PageTable::PageTable(PageTableArena& arena) : arena_(arena) { pgd_ = allocTable(PtLevel::kPgd); }

PageTable::~PageTable() {
  FreeEveryTableOp op(*this);
  walk(VirtAddr(0), VirtAddr(kPgdSize * kPtrsPerTable), op);
  freeTable(pgd_, PtLevel::kPgd);
}

void PageTable::accountTable(PtLevel level, int delta) {
  if (level == PtLevel::kPgd) return;  // the mm's own, not in mm_pgtables_bytes()
  const auto d = static_cast<uint64_t>(static_cast<int64_t>(delta));
  tablePages_[static_cast<size_t>(level)].fetch_add(d, std::memory_order_relaxed);
  pgtablesBytes_.fetch_add(d * kPageTableBytes, std::memory_order_relaxed);
}

uint64_t PageTable::tablePages(PtLevel level) const {
  return tablePages_[static_cast<size_t>(level)].load(std::memory_order_relaxed);
}

uint64_t PageTable::hostBytes() const {
  uint64_t pages = 1;  // the PGD
  for (const auto& n : tablePages_) pages += n.load(std::memory_order_relaxed);
  return pages * PageTableArena::kBytesPerPage;
}

PageTablePage* PageTable::allocTable(PtLevel level) {
  if (allocFails_ && allocFails_(level)) return nullptr;
  PageTablePage* t = arena_.alloc();
  accountTable(level, +1);
  return t;
}

void PageTable::freeTable(PageTablePage* table, PtLevel level) {
  arena_.free(table);
  accountTable(level, -1);
}

uint64_t PageTable::allocTableFor(Slot slot) {
  PageTablePage* fresh = allocTable(levelBelow(slot.level));
  if (fresh == nullptr) return 0;
  {
    // Install only if still empty: a racing fault may have installed a
    // table or a huge leaf meanwhile.
    SpinGuard guard(ptlFor(slot));
    if (pte::isNone(slot.entry->load(std::memory_order_relaxed))) {
      slot.entry->store(pte::makeTable(fresh), std::memory_order_release);
      fresh = nullptr;
    }
  }
  if (fresh != nullptr) freeTable(fresh, levelBelow(slot.level));
  return slot.entry->load(std::memory_order_acquire);
}

SpinLock& PageTable::lockForTable(PageTablePage* table, PtLevel level) {
  // x86-64: PGD and PUD entries are covered by mm->page_table_lock; PMD and
  // PTE tables have split locks (USE_SPLIT_PMD_PTLOCKS).
  if (level >= PtLevel::kPud) return pageTableLock_;
  return PageTableArena::ptl(table);
}

SpinLock& PageTable::ptlFor(const Slot& slot) { return lockForTable(slot.table, slot.level); }

namespace {

// The leaf `e` of `level` that maps `va`.
PageTable::Translation leafTranslation(PtLevel level, uint64_t e, VirtAddr va) {
  // The MMU ignores the pfn bits below the leaf's size (mm-pfnmap.md §8.4).
  const uint64_t pages = levelSize(level) >> kPageShift;
  const uint64_t base = pte::pfnOf(e).value() & ~(pages - 1);
  const uint64_t index = (va.value() & (levelSize(level) - 1)) >> kPageShift;
  return {true, level, e, Pfn(base + index)};
}

// One level of the MMU's walk, the level a template argument so that the
// four levels unroll with their shifts and tests folded, as walkLevel()s do.
template <PtLevel L>
PageTable::Translation translateAt(const PageTablePage* t, VirtAddr va) {
  const uint64_t e = t->entries[va.tableIndex(L)].load(std::memory_order_acquire);
  if (!pte::isPresent(e)) return {};
  if constexpr (L == PtLevel::kPte) {
    return leafTranslation(L, e, va);
  } else {
    // A PGD entry always points to a table (no 512 GiB pages).
    if (L != PtLevel::kPgd && pte::isHugeLeaf(e)) return leafTranslation(L, e, va);
    return translateAt<levelBelow(L)>(pte::tableOf(e), va);
  }
}

}  // namespace

// The MMU's walk stays apart from walk(): it follows one address, takes no
// lock, allocates nothing and runs on every TLB miss (BM_TlbMissWalk), where
// the range walker's per-level bounds arithmetic would be pure cost.
PageTable::Translation PageTable::translate(VirtAddr va) const {
  return translateAt<PtLevel::kPgd>(pgd_, va);
}

// The table below the directory entry `dir`, allocated if missing and
// `alloc` (pud_alloc / pmd_alloc / pte_alloc). Inline, and the slots built
// from registers, so that the lookups below keep them there: a Slot stored
// field by field and reloaded whole cannot be forwarded from the stores.
inline PageTable::WalkStatus PageTable::tableBelow(const Slot& dir, bool alloc,
                                                   PageTablePage** table) {
  uint64_t e = dir.entry->load(std::memory_order_acquire);
  if (!pte::isPresent(e)) {
    if (!alloc) return WalkStatus::kAbsent;
    e = allocTableFor(dir);
    if (pte::isNone(e)) return WalkStatus::kNoMem;
  }
  // A PGD entry always points to a table (no 512 GiB pages).
  if (dir.level != PtLevel::kPgd && pte::isHugeLeaf(e)) return WalkStatus::kHugeAbove;
  *table = pte::tableOf(e);
  return WalkStatus::kOk;
}

// A loop of its own too: a lookup of one address needs none of walk()'s
// range bounds, and the fault path does several per 4 KiB fault, where going
// through walk() cost about 9 % of BM_FaultPte. Tables are allocated as walk()
// allocates them.
PageTable::WalkStatus PageTable::slotAt(VirtAddr va, PtLevel level, bool alloc, Slot* out) {
  PageTablePage* t = pgd_;
  for (PtLevel l = PtLevel::kPgd; l > level; l = levelBelow(l)) {
    const Slot dir{&t->entries[va.tableIndex(l)], t, l};
    if (const WalkStatus st = tableBelow(dir, alloc, &t); st != WalkStatus::kOk) return st;
  }
  *out = Slot{&t->entries[va.tableIndex(level)], t, level};
  return WalkStatus::kOk;
}

PageTable::WalkStatus PageTable::slotBelow(const Slot& dir, VirtAddr va, bool alloc, Slot* out) {
  PageTablePage* t = nullptr;
  if (const WalkStatus st = tableBelow(dir, alloc, &t); st != WalkStatus::kOk) return st;
  const PtLevel level = levelBelow(dir.level);
  *out = Slot{&t->entries[va.tableIndex(level)], t, level};
  return WalkStatus::kOk;
}

LeafCounts PageTable::zapRange(VirtAddr start, VirtAddr end, MmuGather& tlb) {
  Zap op(*this, start, end, tlb);
  walk(start, end, op);
  return op.cleared();
}

void PageTable::splitHugeAt(VirtAddr addr, MmuGather& tlb) {
  // A lookup per level rather than one walk: the model takes the PUD and
  // PMD locks here whenever the entry's table exists, huge leaf or not,
  // while walk() hands over only the leaves. Lockdep and the schedules of
  // `vfiomm check` see every acquisition, so they stay as they are.
  for (PtLevel level : {PtLevel::kPud, PtLevel::kPmd}) {
    if (addr.isAligned(levelSize(level))) continue;
    Slot s;
    if (slotAt(addr, level, false, &s) != WalkStatus::kOk) return;
    SpinGuard guard(ptlFor(s));
    if (!pte::isHugeLeaf(s.entry->load(std::memory_order_relaxed))) continue;
    s.entry->store(0, std::memory_order_release);
    const VirtAddr a = addr.alignDown(levelSize(level));
    tlb.addRange(a, a + levelSize(level), level);
    countSplit(level);
  }
}

PageTable::WalkStatus PageTable::copyRange(PageTable& dst, VirtAddr start, VirtAddr end) const {
  // The parent's mmap_lock is held for write, so its tables stay; a zap may
  // still clear leaves, hence the re-read under the source lock. The walk
  // only reads the parent's entries, though walk() itself is not const.
  auto* self = const_cast<PageTable*>(this);
  CopyRange op(*self, dst);
  return self->walk(start, end, op);
}

PageTable::WalkStatus PageTable::moveRange(VirtAddr from, VirtAddr to, uint64_t len,
                                           MmuGather& tlb) {
  MoveRange op(*this, from, to, len, tlb);
  return walk(from, from + len, op);
}

LeafCounts PageTable::changeProtection(VirtAddr start, VirtAddr end, uint64_t prot,
                                       MmuGather& tlb) {
  ChangeProtection op(*this, prot, tlb);
  walk(start, end, op);
  return op.changed();
}

void PageTable::freePgtables(VirtAddr start, VirtAddr end, VirtAddr floor, VirtAddr ceiling,
                             MmuGather& tlb) {
  FreeTablesOp op(*this, floor, ceiling, tlb);
  walk(start, end, op);
}

void PageTable::forEachLeaf(VirtAddr start, VirtAddr end,
                            const std::function<void(VirtAddr, PtLevel, uint64_t)>& fn) const {
  // Only reads, though walk() itself is not const.
  VisitLeaves op(fn);
  const_cast<PageTable*>(this)->walk(start, end, op);
}

}  // namespace vfiomm
