// Zap tracking of Linux 5.8-6.9 (G1, all 6.1.y; vfio-bar-mapping.md §5.1,
// §11): vm_pgoff rewritten to a pfn at mmap; a per-device list of the VMAs
// a fault filled (RemapVmaFault adds them), under vma_lock; ->open zaps a
// new VMA structure so that only faulted VMAs are ever listed; ->close
// delists; the zap walks the list with the trylock dance around each mm's
// mmap_lock. Forked (open-before-copy), moved and some split mappings
// escape the list: the holes of G1, which the monitors must see.
#pragma once

#include <cstddef>
#include <list>

#include "sync/mutex.h"
#include "vfio/design/zap_tracking.h"

namespace vfiomm {

class Mm;
class VfioPciCoreDevice;

inline const LockClass kVfioVmaLockClass{"&vdev->vma_lock"};

class VmaListTracking final : public ZapTracking {
 public:
  // `zapOnOpen`: DesignOptions::vmaListZapOnOpen.
  VmaListTracking(VfioPciCoreDevice& vdev, bool zapOnOpen) : vdev_(vdev), zapOnOpen_(zapOnOpen) {}

  void setupVma(Vma& vma) override;
  void open(Vma& vma) override;
  void close(Vma& vma) override;

  void zapAndDownWriteMemoryLock() override;
  bool tryZapAndDownWriteMemoryLock() override;

  Mutex& vmaLock() RETURN_CAPABILITY(vmaLock_) { return vmaLock_; }
  // The fault's part: is the VMA filled already, and list it once it is.
  bool listedLocked(const Vma& vma) const REQUIRES(vmaLock_);
  void addLocked(Vma& vma) REQUIRES(vmaLock_);

  size_t listLength();  // length of vma_list
  bool isListed(const Vma& vma);

 private:
  struct Node {
    Vma* vma;
    Mm* mm;
  };
  // vfio_pci_zap_and_vma_lock(): true with vma_lock held and the list empty;
  // false (try mode, contention) with nothing held.
  bool zapAndVmaLock(bool tryMode);

  VfioPciCoreDevice& vdev_;
  const bool zapOnOpen_;
  Mutex vmaLock_{kVfioVmaLockClass};
  std::list<Node> vmaList_ GUARDED_BY(vmaLock_);
};

}  // namespace vfiomm
