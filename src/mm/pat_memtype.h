// PatMemtype models x86 PAT's memtype tracking of device memory
// (arch/x86/mm/pat/memtype.c, memtype_interval.c): the physical ranges
// reserved with a cache mode, kept in one interval tree under
// memtype_lock. One per Kernel, as the tree is one per system.
//
// Only G1's remap_pfn_range() reserves (track_pfn_remap, and
// track_pfn_copy at fork); the vmf_insert_pfn*() of later designs only
// look the memtype up (mm-pfnmap.md §7.1). The model maps every BAR
// uncached-minus (pgprot_noncached), so reservations never conflict:
// overlapping ones, a fork child's copy of its parent's range, stand side
// by side, as the interval tree keeps them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/addr.h"
#include "sync/spin_lock.h"

namespace vfiomm {

class KernelLog;

inline const LockClass kMemtypeLockClass{"memtype_lock"};

class PatMemtype {
 public:
  // A reserved range, [start, end).
  struct Range {
    PhysAddr start;
    PhysAddr end;
    friend bool operator==(const Range&, const Range&) = default;
  };

  // The messages of free() and untrackWarn() go to `log`.
  explicit PatMemtype(KernelLog& log) : log_(log) {}
  PatMemtype(const PatMemtype&) = delete;
  PatMemtype& operator=(const PatMemtype&) = delete;

  // memtype_reserve() of [start, end) as uncached-minus.
  void reserve(PhysAddr start, PhysAddr end) EXCLUDES(lock_);
  // memtype_free(): erases the reservation of exactly [start, end), or
  // else shrinks the first that ends at `end` and starts below `start` to
  // end at `start` (memtype_erase's mremap case). Otherwise nothing is
  // freed: logs "freeing invalid memtype", naming current (the calling
  // thread's lockdep::threadIdentity()), and returns false.
  bool free(PhysAddr start, PhysAddr end) EXCLUDES(lock_);

  // The WARN_ON_ONCE of untrack_pfn() and of track_pfn_copy(), both for a
  // VM_PAT VMA with no PTE at vm_start: each site's splat goes to the log
  // the first time only, per boot, naming current as free() does.
  enum class WarnSite : uint8_t { kUntrackPfn, kTrackPfnCopy };
  void warnOnce(WarnSite site) EXCLUDES(lock_);

  // The reservations in the tree's order (by start).
  std::vector<Range> ranges() const EXCLUDES(lock_);
  // /sys/kernel/debug/x86/pat_memtype_list.
  std::string memtypeList() const EXCLUDES(lock_);

 private:
  KernelLog& log_;
  mutable SpinLock lock_{kMemtypeLockClass};  // memtype_lock
  // memtype_rbroot: end by start; a start may repeat.
  std::multimap<uint64_t, uint64_t> tree_ GUARDED_BY(lock_);
  uint8_t warned_ GUARDED_BY(lock_) = 0;  // a bit per WarnSite
};

}  // namespace vfiomm
