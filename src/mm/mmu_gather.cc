#include "mm/mmu_gather.h"

#include <algorithm>

#include "hw/page_table_arena.h"
#include "mm/mm.h"

namespace vfiomm {

MmuGather::MmuGather(Mm& mm) : flush_(mm.tlbFlusher()), mm_(&mm) { mm.incTlbFlushPending(); }

void MmuGather::finish() {
  if (finished_) return;
  finished_ = true;
  if (mm_ != nullptr && mm_->tlbFlushNested() && !mm_->profile().gatherWithoutNestedFlush) {
    // Another gather of this mm may have cleared entries this one found
    // gone and not flushed them yet: flush them all, and the tables with
    // them, as tlb_finish_mmu() does (fullmm, freed_tables).
    fullMm_ = true;
  }
  flush();
  if (mm_ != nullptr) mm_->decTlbFlushPending();
}

void MmuGather::addRange(VirtAddr start, VirtAddr end, PtLevel level) {
  start_ = std::min(start_, start.value());
  end_ = std::max(end_, end.value());
  // tlb_get_unmap_shift(): the stride is the smallest leaf size cleared.
  strideShift_ = std::min(strideShift_, levelShift(level));
}

void MmuGather::removeTable(PageTablePage* table) { tables_.push_back(table); }

void MmuGather::flush() {
  const bool freed = !tables_.empty();
  if (fullMm_) {
    // Start and end 0 with freed tables: every entry of the mm goes.
    if (flush_) flush_(VirtAddr(0), VirtAddr(0), kPageShift, true);
  } else if (start_ < end_ || freed) {
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
