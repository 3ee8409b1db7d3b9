// MmuGather models struct mmu_gather (mm/mmu_gather.c): a walker that clears
// entries records the range it touched and the table pages it unlinked; the
// TLBs of every CPU that may cache the mm are flushed once for the whole
// range, and only then are the unlinked table pages freed, so no CPU can
// still be walking a freed table.
//
// A gather of an mm also counts itself in the mm's tlb_flush_pending from
// start to finish. Two gathers may clear entries of one range at once (a
// munmap under mmap_lock and a driver's zap under i_mmap_rwsem): the second
// finds the entries already gone, gathers nothing, and would return while the
// TLBs still hold what the first has not flushed yet. tlb_finish_mmu()
// closes that hole: a gather that sees another one pending flushes the
// whole mm.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "base/addr.h"
#include "base/page_geometry.h"

namespace vfiomm {

class Mm;
struct PageTablePage;

// How a gather reaches the TLBs: flush [start, end) of one mm in steps of
// 1 << strideShift bytes; `freedTables` says page-table pages go away too.
using TlbFlushFn =
    std::function<void(VirtAddr start, VirtAddr end, unsigned strideShift, bool freedTables)>;

class MmuGather {
 public:
  // tlb_gather_mmu(): entries of `mm`, flushed on the CPUs of its cpumask.
  explicit MmuGather(Mm& mm);
  // Entries of a bare page table (unit tests): `flush` reaches the TLBs, or
  // nothing when empty; no other gather is ever pending.
  explicit MmuGather(TlbFlushFn flush) : flush_(std::move(flush)) {}
  ~MmuGather() { finish(); }
  MmuGather(const MmuGather&) = delete;
  MmuGather& operator=(const MmuGather&) = delete;

  // tlb_flush_{pte,pmd,pud}_range(): a leaf of `level` was cleared or changed.
  void addRange(VirtAddr start, VirtAddr end, PtLevel level);
  // pte_free_tlb() and friends: free `table` after the next flush.
  void removeTable(PageTablePage* table);
  // tlb_flush_mmu(): flush what was gathered, then free the tables.
  void flush();
  // tlb_finish_mmu(): the last flush; the gather is done after it.
  void finish();

  bool empty() const { return start_ >= end_ && tables_.empty(); }

 private:
  TlbFlushFn flush_;
  Mm* mm_ = nullptr;  // whose tlb_flush_pending counts this gather
  bool finished_ = false;
  bool fullMm_ = false;  // flush every entry of the mm, whatever was gathered
  uint64_t start_ = UINT64_MAX;
  uint64_t end_ = 0;
  static constexpr unsigned kNoStride = 64;
  unsigned strideShift_ = kNoStride;  // shift of the smallest leaf level seen
  std::vector<PageTablePage*> tables_;
};

}  // namespace vfiomm
