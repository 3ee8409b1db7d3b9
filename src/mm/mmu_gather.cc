#include "mm/mmu_gather.h"

#include <algorithm>

#include "mm/page_table_arena.h"

namespace vfiomm {

void MmuGather::addRange(VirtAddr start, VirtAddr end, PtLevel level) {
  start_ = std::min(start_, start.value());
  end_ = std::max(end_, end.value());
  // tlb_get_unmap_shift(): the stride is the smallest leaf size cleared.
  strideShift_ = std::min(strideShift_, levelShift(level));
}

void MmuGather::removeTable(PageTablePage* table) { tables_.push_back(table); }

void MmuGather::flush() {
  const bool freed = !tables_.empty();
  if (start_ < end_ || freed) {
    // With only tables to free the flush still has to reach every CPU of the
    // mm (tlb_remove_table_sync_one): a walk may be in flight on one.
    const uint64_t s = start_ < end_ ? start_ : 0;
    const uint64_t e = start_ < end_ ? end_ : 0;
    const unsigned stride = strideShift_ == kNoStride ? kPageShift : strideShift_;
    if (flush_) flush_(VirtAddr(s), VirtAddr(e), stride, freed);
  }
  for (PageTablePage* t : tables_) PageTableArena::release(t);
  tables_.clear();
  start_ = UINT64_MAX;
  end_ = 0;
  strideShift_ = kNoStride;
}

}  // namespace vfiomm
