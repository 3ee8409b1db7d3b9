// VfioIommuType1: the type1 IOMMU driver of a container
// (drivers/vfio/vfio_iommu_type1.c): one instance per container once
// VFIO_SET_IOMMU chose TYPE1 or TYPE1v2, the DMA mappings user space asked
// for (vfio_dma), and the ioctls GET_INFO, MAP_DMA and UNMAP_DMA with their
// checks in the kernel's order (dma-mapping.md §1.3-§1.6).
//
// MAP_DMA resolves the user range page by page (vaddr_get_pfns): anonymous
// memory is pinned and charged to locked_vm; a VM_PFNMAP range (a vfio BAR
// mmap) is looked up in the CPU page table, faulted in through the mapping
// design's own fault handler when absent, and neither pinned nor charged
// (§2). The lookup follows the kernel profile's era (Type1PfnLookup). The
// IOPTEs then live on their own: nothing CPU-side (zap, munmap, close)
// removes them (§2.6), only UNMAP_DMA and the instance's release.
//
// UNMAP_DMA with VADDR invalidates mappings' vaddrs and leaves their IOPTEs
// (a VMM about to exec); MAP_DMA with VADDR gives one its new vaddr and
// moves its locked_vm charge to the caller's mm (vfio_change_dma_owner).
// While any vaddr is invalid no group may attach (it could need pinning).
//
// Modelled simplifications: all groups of the container share one IOMMU
// domain (they sit behind the one IOMMU of the host); there are no emulated
// (mdev) groups; dirty tracking is not modelled; the 32-bit truncation
// checks (step 3 of §1.4) cannot fire on a 64-bit host.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "base/addr.h"
#include "base/result.h"
#include "iommu/iommu.h"
#include "sync/mutex.h"
#include "vfio/vfio_profile.h"

namespace vfiomm {

class KernelLog;
class Mm;
class PciDevice;
class SystemRam;
class Vma;
struct Task;

// The calling task as the driver sees `current`.
struct Type1Caller {
  Task& task;
  Mm& mm;
  uint64_t memlockLimit = 0;  // rlimit(RLIMIT_MEMLOCK), bytes
  // capable(CAP_IPC_LOCK): its pins are still charged to locked_vm, but
  // no limit refuses them.
  bool lockCap = false;
};

// The lookup and cost counts of one instance, since it was created.
struct Type1Stats {
  uint64_t vaddrGetPfnsCalls = 0;  // vaddr_get_pfns()
  uint64_t faults = 0;             // fixup_user_fault() calls made by MAP_DMA
  uint64_t pinnedPages = 0;        // pages pinned now (anonymous memory)
  uint64_t condResched = 0;        // scheduling points of the pin loop (type1_resched)
};

// The module's parameters (modprobe vfio_iommu_type1 ...).
struct Type1Params {
  uint32_t dmaEntryLimit = 65535;  // dma_entry_limit: mappings per container
  // disable_hugepages: every pin chunk is one page, so every iommu_map()
  // maps 4 KiB (dma-mapping.md §2.1, DMA-11).
  bool disableHugepages = false;
};

inline const LockClass kVfioIommuLockClass{"&iommu->lock"};

class VfioIommuType1 {
 public:
  VfioIommuType1(Iommu& iommu, SystemRam& ram, KernelLog& log, const VfioProfile& profile, bool v2,
                 const Type1Params& params = {});
  // vfio_iommu_type1_release(): every mapping is unmapped and unpinned.
  ~VfioIommuType1();
  VfioIommuType1(const VfioIommuType1&) = delete;
  VfioIommuType1& operator=(const VfioIommuType1&) = delete;

  // vfio_iommu_type1_check_extension(), with (`instance`) or without one.
  static long checkExtension(const VfioIommuType1* instance, unsigned long ext);

  // vfio_iommu_type1_attach_group()'s first check: -EBUSY while a
  // mapping's vaddr is invalid (attaching could need pinning).
  Status mayAttachGroup() EXCLUDES(lock_);
  // vfio_iommu_type1_attach_group() for one device of a group.
  void attachDevice(const PciDevice& device);

  // The driver's ioctl: GET_INFO, MAP_DMA, UNMAP_DMA; -ENOTTY otherwise.
  Result<long> ioctl(unsigned long request, void* arg, const Type1Caller& caller) EXCLUDES(lock_);

  IommuDomain& domain() { return *domain_; }
  Type1Stats stats() const;
  uint32_t dmaAvail() EXCLUDES(lock_);

 private:
  struct VfioDma {
    uint64_t iova = 0;
    uint64_t vaddr = 0;
    uint64_t size = 0;
    int prot = 0;
    uint64_t lockedPages = 0;   // charged to the mapping task's locked_vm
    std::weak_ptr<Mm> mm;       // whose locked_vm
    bool lockCap = false;       // dma->lock_cap: the owner had CAP_IPC_LOCK at MAP_DMA
    bool vaddrInvalid = false;  // UNMAP_DMA(VADDR) until MAP_DMA(VADDR)
  };
  // What one vaddr_get_pfns() call resolved: `count` pfns from `pfn`.
  struct PfnRun {
    Pfn pfn;
    uint64_t count = 0;
    bool reserved = false;  // no struct page (MMIO): not pinned, not charged
  };

  Result<long> getInfo(void* arg) EXCLUDES(lock_);
  Result<long> mapDma(void* arg, const Type1Caller& caller) EXCLUDES(lock_);
  Result<long> unmapDma(void* arg) EXCLUDES(lock_);
  // The checks of vfio_dma_do_map() from step 5 on (§1.4).
  Status checkMap(uint64_t iova, uint64_t vaddr, uint64_t size) REQUIRES(lock_);
  Result<uint64_t> checkUnmap(uint64_t iova, uint64_t size, uint32_t flags) REQUIRES(lock_);
  // vfio_dma_do_unmap()'s loop with VADDR: every mapping starting in
  // [iova, last] gets its vaddr invalidated; one already invalid undoes
  // this call's and fails it. Returns the bytes invalidated.
  Result<uint64_t> invalidateVaddr(uint64_t iova, uint64_t last) REQUIRES(lock_);
  // vfio_dma_do_map() with VADDR: the invalidated mapping of exactly
  // [iova, iova + size) takes `vaddr`.
  Status updateVaddr(uint64_t iova, uint64_t vaddr, uint64_t size, const Type1Caller& caller)
      REQUIRES(lock_);
  // vfio_change_dma_owner(): `dma`'s pages are charged to the caller's mm
  // now (-ENOMEM past its limit), no longer to the mapping task's.
  static Status changeDmaOwner(VfioDma& dma, const Type1Caller& caller);
  // vfio_find_dma(): a mapping overlapping [iova, iova + size), or nullptr;
  // size 1 finds the one containing `iova`.
  VfioDma* findOverlapping(uint64_t iova, uint64_t size) REQUIRES(lock_);
  bool insideOneValidRange(uint64_t iova, uint64_t size) const;
  // vfio_pin_map_dma(): pin (or look up) and map all of `dma`; on failure
  // everything done is undone.
  Status pinMapDma(VfioDma& dma, const Type1Caller& caller) REQUIRES(lock_);
  // The pin loop's refill: [type1_resched] a scheduling point, then one
  // vaddr_get_pfns() call.
  Result<PfnRun> refill(const Type1Caller& caller, uint64_t vaddr, uint64_t npages, bool write);
  // One vaddr_get_pfns() call for up to `npages` pages at `vaddr`.
  Result<PfnRun> vaddrGetPfns(const Type1Caller& caller, uint64_t vaddr, uint64_t npages,
                              bool write);
  // GUP's pin of up to one batch of pages of `vma` (anonymous memory or a
  // file with pages: a MAP_HUGETLB mapping, a memfd) from `vaddr`.
  Result<PfnRun> pinPages(Mm& mm, const Vma& vma, uint64_t vaddr, uint64_t npages);
  // follow_fault_pfn() on a VM_PFNMAP VMA: nullopt when the entry is absent.
  Result<std::optional<PfnRun>> followPfnmap(Mm& mm, uint64_t vaddr, uint64_t npages, bool write);
  // Charge `pages` of `dma` to the caller's locked_vm, or -ENOMEM with the
  // kernel's warning when that passes its limit and `dma` has no lock_cap.
  Status chargeLockedVm(const VfioDma& dma, const Type1Caller& caller, uint64_t pages);
  // vfio_unmap_unpin() and removal from the list; returns the bytes removed.
  uint64_t removeDma(const VfioDma& dma) REQUIRES(lock_);

  Iommu& iommu_;
  SystemRam& ram_;
  KernelLog& log_;
  const VfioProfile& profile_;
  const bool v2_;
  const bool disableHugepages_;
  std::shared_ptr<IommuDomain> domain_;
  Mutex lock_{kVfioIommuLockClass};
  std::map<uint64_t, VfioDma> dmaList_ GUARDED_BY(lock_);  // by IOVA
  uint32_t dmaAvail_ GUARDED_BY(lock_);
  uint32_t vaddrInvalidCount_ GUARDED_BY(lock_) = 0;
  std::atomic<uint64_t> vaddrGetPfnsCalls_{0};
  std::atomic<uint64_t> faults_{0};
  std::atomic<uint64_t> pinnedPages_{0};
  std::atomic<uint64_t> condResched_{0};
};

}  // namespace vfiomm
