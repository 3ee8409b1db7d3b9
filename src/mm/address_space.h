// AddressSpace models struct address_space as vfio uses it: no page cache,
// only the i_mmap interval tree of every shared VMA that maps the file, under
// i_mmap_rwsem, and unmap_mapping_range() over it (mm-pfnmap.md §4, §5).
#pragma once

#include <cstdint>
#include <functional>

#include "base/addr.h"
#include "mm/pfn_insert.h"
#include "mm/vma_interval_tree.h"
#include "sync/rw_semaphore.h"

namespace vfiomm {

class Vma;

inline const LockClass kIMmapRwsemClass{"&mapping->i_mmap_rwsem"};

class AddressSpace {
 public:
  AddressSpace() = default;
  AddressSpace(const AddressSpace&) = delete;
  AddressSpace& operator=(const AddressSpace&) = delete;

  RwSemaphore& iMmapRwsem() RETURN_CAPABILITY(iMmapRwsem_) { return iMmapRwsem_; }

  // vma_interval_tree_insert / _insert_after / _remove; i_mmap_rwsem held for write.
  void insertVma(Vma& vma) REQUIRES(iMmapRwsem_);
  void insertVmaAfter(Vma& prev, Vma& vma) REQUIRES(iMmapRwsem_);
  void removeVma(Vma& vma) REQUIRES(iMmapRwsem_);

  // unmap_mapping_range(mapping, holebegin, holelen, even_cows): zap every
  // mapping of the file bytes [holebegin, holebegin + holelen) in every mm;
  // holelen 0 means to the end of the file. Takes i_mmap_rwsem for read and
  // no mmap lock. Returns the number of leaf entries cleared.
  // `flush`: ZapFlush::kSkipped only for the seeded bug (pfn_insert.h).
  uint64_t unmapMappingRange(uint64_t holebegin, uint64_t holelen, bool evenCows,
                             ZapFlush flush = ZapFlush::kShootdown) EXCLUDES(iMmapRwsem_);

  // Visit the VMAs overlapping the page range [first, last] (i_mmap_rwsem
  // held by the caller, either mode).
  void forEachVma(uint64_t first, uint64_t last, const std::function<void(Vma&)>& fn)
      REQUIRES_SHARED(iMmapRwsem_);
  size_t vmaCount() REQUIRES_SHARED(iMmapRwsem_) { return iMmap_.size(); }

  // Observers of every unmapMappingRange call: the VMAs it visited (ZAP-01),
  // and, after each VMA's part was zapped and flushed, the range (the
  // invariant-2 monitor checks nothing translates into it any more).
  void setZapObserver(std::function<void(const Vma&)> fn) { zapObserver_ = std::move(fn); }
  using ZapCheck = std::function<void(const Vma&, VirtAddr start, VirtAddr end)>;
  void setZapCheck(ZapCheck fn) { zapCheck_ = std::move(fn); }
  uint64_t unmapCalls() const { return unmapCalls_.load(std::memory_order_relaxed); }

 private:
  RwSemaphore iMmapRwsem_{kIMmapRwsemClass};
  IntervalTree<Vma*> iMmap_ GUARDED_BY(iMmapRwsem_);
  std::function<void(const Vma&)> zapObserver_;
  ZapCheck zapCheck_;
  std::atomic<uint64_t> unmapCalls_{0};
};

}  // namespace vfiomm
