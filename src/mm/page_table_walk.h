// PageTable::walk(): the one descent of a page table over a virtual range,
// with per-operation hooks (OSv's map_level over a page_table_operation is
// the model). Every table the range overlaps is visited once, top-down and in
// address order; what becomes of its entries is the operation's business.
//
// An operation class derives from PageTableOperation and hides what it needs:
//
//   allocates()   a missing table below a directory entry is allocated and
//                 installed (pud_alloc / pmd_alloc / pte_alloc) rather than
//                 skipped as a hole
//   onEntries(TableEntries)           the overlapping entries of one PTE
//                                     table, present or not
//   onHugeLeaf(slot, addr, entry)     a PUD or PMD leaf; the walk never goes
//                                     below it
//   onTableDone(slot, addr, entry)    the walk below the table that `slot`
//                                     points to is over (free_pgtables frees
//                                     tables on the way up)
//
// A hook's status other than kOk ends the walk with that status. The walk
// reads entries without a lock, as the kernel's walkers do under mmap_lock
// (tables are only freed with it held for write); hooks take the PTL where
// the kernel does and re-check under it.
#pragma once

#include <algorithm>

#include "mm/page_table.h"

namespace vfiomm {

constexpr PtLevel levelBelow(PtLevel l) {
  return static_cast<PtLevel>(static_cast<uint8_t>(l) - 1);
}

// Entries [first, last) of one table of `level` whose entry 0 maps `base`.
struct TableEntries {
  PageTablePage* table;
  PtLevel level;
  VirtAddr base;
  unsigned first;
  unsigned last;  // exclusive

  VirtAddr addressOf(unsigned i) const { return base + uint64_t{i} * levelSize(level); }
  PageTable::Slot slot(unsigned i) const { return {&table->entries[i], table, level}; }
};

// The hooks an operation does not need: skip holes, descend to the PTEs,
// leave every entry alone.
struct PageTableOperation {
  using WalkStatus = PageTable::WalkStatus;
  using Slot = PageTable::Slot;

  static constexpr bool allocates() { return false; }
  static constexpr WalkStatus onEntries(const TableEntries&) { return WalkStatus::kOk; }
  static constexpr WalkStatus onHugeLeaf(const Slot&, VirtAddr, uint64_t) {
    return WalkStatus::kOk;
  }
  static constexpr void onTableDone(const Slot&, VirtAddr, uint64_t) {}
};

// An operation that treats every present leaf alike, whatever its level:
// Derived::leaf(slot, addr, entry) sees each one, in address order.
template <class Derived>
struct PerLeafOperation : PageTableOperation {
  WalkStatus onHugeLeaf(const Slot& slot, VirtAddr addr, uint64_t entry) {
    return self().leaf(slot, addr, entry);
  }
  WalkStatus onEntries(const TableEntries& r) {
    for (unsigned i = r.first; i < r.last; ++i) {
      const uint64_t e = r.table->entries[i].load(std::memory_order_acquire);
      if (!pte::isPresent(e)) continue;
      if (const WalkStatus st = self().leaf(r.slot(i), r.addressOf(i), e); st != WalkStatus::kOk)
        return st;
    }
    return WalkStatus::kOk;
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

template <class Op>
PageTable::WalkStatus PageTable::walk(VirtAddr start, VirtAddr end, Op& op) {
  if (start >= end) return WalkStatus::kOk;
  return walkLevel<PtLevel::kPgd>(pgd_, VirtAddr(0), start, end, op);
}

// One table of level L: the level is a template argument so that the four
// levels unroll into nested loops with the level tests folded away.
template <PtLevel L, class Op>
PageTable::WalkStatus PageTable::walkLevel(PageTablePage* table, VirtAddr base, VirtAddr start,
                                           VirtAddr end, Op& op) {
  // The range overlaps this table, so [first, last) is never empty.
  const uint64_t span = levelSize(L) * kPtrsPerTable;
  const uint64_t lo = std::max(start.value(), base.value()) - base.value();
  const uint64_t hi = std::min(end.value(), base.value() + span) - base.value();
  const TableEntries r{table, L, base, static_cast<unsigned>(lo >> levelShift(L)),
                       static_cast<unsigned>((hi + levelSize(L) - 1) >> levelShift(L))};
  if constexpr (L == PtLevel::kPte) {
    return op.onEntries(r);
  } else {
    for (unsigned i = r.first; i < r.last; ++i) {
      const Slot slot = r.slot(i);
      uint64_t e = slot.entry->load(std::memory_order_acquire);
      if (!pte::isPresent(e)) {
        if (!op.allocates()) continue;
        e = allocTableFor(slot);
        if (pte::isNone(e)) return WalkStatus::kNoMem;
      }
      const VirtAddr a = r.addressOf(i);
      // A PGD entry always points to a table (no 512 GiB pages).
      if (L != PtLevel::kPgd && pte::isHugeLeaf(e)) {
        if (const WalkStatus st = op.onHugeLeaf(slot, a, e); st != WalkStatus::kOk) return st;
        continue;
      }
      if (const WalkStatus st = walkLevel<levelBelow(L)>(pte::tableOf(e), a, start, end, op);
          st != WalkStatus::kOk)
        return st;
      op.onTableDone(slot, a, e);
    }
    return WalkStatus::kOk;
  }
}

}  // namespace vfiomm
