// IommuDomain: one I/O address space of the IOMMU (struct iommu_domain of
// type IOMMU_DOMAIN_UNMANAGED) — its I/O page table from IOVA to physical
// address, filled and emptied through iommu_map()/iommu_unmap() and read by
// device DMA and by iommu_iova_to_phys(). An IOPTE is a leaf of one of the
// sizes of the domain's pgsize_bitmap; the table is kept as its leaves,
// because what the model observes is which leaves exist and at what cost
// they were made, not the intermediate table pages.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>

#include "base/addr.h"
#include "base/result.h"
#include "sync/spin_lock.h"

namespace vfiomm {

// IOMMU_READ, IOMMU_WRITE, IOMMU_CACHE (include/linux/iommu.h).
namespace iommuprot {
inline constexpr int kRead = 1 << 0;
inline constexpr int kWrite = 1 << 1;
inline constexpr int kCache = 1 << 2;
}  // namespace iommuprot

// The I/O page table's lock: io-pgtable updates leaves with cmpxchg, the
// model serialises them on one lock per domain instead.
inline const LockClass kIommuPgtblLockClass{"&domain->pgtbl_lock"};

// Live IOPTEs by leaf size.
struct IopteCounts {
  uint64_t size4K = 0;
  uint64_t size2M = 0;
  uint64_t size1G = 0;
  uint64_t total() const { return size4K + size2M + size1G; }
};

class IommuDomain {
 public:
  struct Iopte {
    PhysAddr paddr;
    uint64_t size = 0;
    int prot = 0;
  };

  // `pgsizeBitmap`: the leaf sizes the hardware offers (4K|2M|1G on VT-d
  // with second-level 1 GiB pages: 0x40201000).
  explicit IommuDomain(uint64_t pgsizeBitmap);
  IommuDomain(const IommuDomain&) = delete;
  IommuDomain& operator=(const IommuDomain&) = delete;

  uint64_t pgsizeBitmap() const { return pgsizeBitmap_; }
  uint64_t minPageSize() const { return pgsizeBitmap_ & (~pgsizeBitmap_ + 1); }

  // iommu_map(): one call, split into the largest leaves that IOVA and
  // physical alignment and the remaining length allow. -EINVAL: not aligned
  // to the smallest page or empty; -EEXIST: a leaf is already there (what
  // was mapped by this call is unmapped again).
  Status map(uint64_t iova, PhysAddr paddr, uint64_t size, int prot) EXCLUDES(lock_);
  // iommu_unmap(): removes every leaf starting in [iova, iova + size);
  // returns the bytes removed.
  uint64_t unmap(uint64_t iova, uint64_t size) EXCLUDES(lock_);
  // iommu_iova_to_phys(): counted, as type1's unmap walk pays one per page.
  // Like the kernel's walk it takes no lock while the leaf it found last
  // still answers (LastLeaf below).
  std::optional<PhysAddr> iovaToPhys(uint64_t iova) EXCLUDES(lock_);
  // A device's DMA at `iova` as the DMA remapping hardware runs it: the
  // leaf translating it, if one allows `need` (iommuprot bits), is handed
  // to `transaction` (the physical address), which completes before any
  // unmap of that leaf returns: the domain's lock held across both stands
  // in for the IOTLB invalidation's write and read drain (VT-d's Drain
  // Writes/Reads), after which no DMA through the old entry is in flight.
  // False, and nothing done, without such a leaf. Not counted: no kernel
  // code runs.
  template <class Transaction>
  bool dma(uint64_t iova, int need, Transaction&& transaction) EXCLUDES(lock_) {
    SpinGuard g(lock_);
    const std::optional<Iopte> leaf = leafAt(iova);
    if (!leaf || (leaf->prot & need) == 0) return false;
    transaction(leaf->paddr + (iova & (leaf->size - 1)));
    return true;
  }

  IopteCounts iopteCounts() EXCLUDES(lock_);
  uint64_t mapCalls() const { return mapCalls_.load(std::memory_order_relaxed); }
  uint64_t iovaToPhysCalls() const { return iovaToPhysCalls_.load(std::memory_order_relaxed); }

 private:
  // The largest leaf size for `iova`/`paddr` with `remaining` bytes to go
  // (iommu_pgsize()).
  uint64_t pgsizeFor(uint64_t iova, PhysAddr paddr, uint64_t remaining) const;
  std::optional<Iopte> leafAt(uint64_t iova) const REQUIRES(lock_);
  bool anyLeafIn(uint64_t iova, uint64_t size) const REQUIRES(lock_);
  void removeLeaves(uint64_t iova, uint64_t size, uint64_t* removed) REQUIRES(lock_);
  void count(uint64_t size, int delta) REQUIRES(lock_);

  // The leaf iovaToPhys() found last, readable without lock_. The kernel's
  // iommu_iova_to_phys() walks the I/O page table locklessly; the model's
  // table is a std::map that only lock_ may read, so a lockless reader is
  // answered from this copy instead, which a sequence count guards the way
  // a seqcount_t guards data whose writers hold a lock: a reader retries
  // under lock_ if the count was odd or moved while it read. Only unmap
  // removes leaves, so only unmap and a refill change the copy; a leaf
  // mapped later never makes it stale.
  class LastLeaf {
   public:
    // The address `iova` translates to, if the copy holds its leaf and no
    // writer interfered.
    std::optional<PhysAddr> translate(uint64_t iova) const;
    void set(uint64_t iova, const Iopte& leaf);  // under lock_
    void clear() { set(0, Iopte{}); }            // under lock_

   private:
    std::atomic<uint64_t> seq_{0};  // odd while set() writes
    std::atomic<uint64_t> iova_{0};
    std::atomic<uint64_t> size_{0};  // 0: no leaf
    std::atomic<uint64_t> paddr_{0};
  };

  const uint64_t pgsizeBitmap_;
  SpinLock lock_{kIommuPgtblLockClass};
  std::map<uint64_t, Iopte> leaves_ GUARDED_BY(lock_);  // by IOVA
  IopteCounts counts_ GUARDED_BY(lock_);
  LastLeaf lastLeaf_;  // written under lock_, read without it
  std::atomic<uint64_t> mapCalls_{0};
  std::atomic<uint64_t> iovaToPhysCalls_{0};
};

}  // namespace vfiomm
