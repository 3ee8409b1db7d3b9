// `vma-list` (G1, Linux 5.8-6.9, all 6.1.y) as it really was
// (vfio-bar-mapping.md §5.1, §11): vm_pgoff rewritten to a pfn at mmap; the
// first fault fills the whole VMA with io_remap_pfn_range under the mmap
// *read* lock (so the mmap-lock write assertion fires where the profile's
// mm has it: FAULT-05) and lists the VMA; ->open zaps new VMA structures;
// ->close delists; the zap walks the list with the trylock dance around each
// mm's mmap_lock. Forked (open-before-copy), moved and some split mappings
// escape the list: the holes of G1, which the monitors must see.
#pragma once

#include <list>
#include <memory>

#include "sync/mutex.h"
#include "vfio/mapping_design.h"

namespace vfiomm {

class Mm;

inline const LockClass kVfioVmaLockClass{"&vdev->vma_lock"};

class VmaListDesign : public MappingDesign {
 public:
  VmaListDesign(VfioPciCoreDevice& vdev, const DesignOptions& options)
      : MappingDesign(vdev), options_(options) {}

  DesignKind kind() const override { return DesignKind::kVmaList; }
  void setupVma(Vma& vma) const override;
  bool hasFault() const override { return true; }
  VmFaultResult fault(VmFault& vmf) const override;
  void open(Vma& vma) const override;
  void close(Vma& vma) const override;

  void zapBars() override;
  void zapAndDownWriteMemoryLock() override;
  bool tryZapAndDownWriteMemoryLock() override;

  size_t listLength();  // length of vma_list
  bool isListed(const Vma& vma);
  Mutex& vmaLock() RETURN_CAPABILITY(vmaLock_) { return vmaLock_; }

 private:
  struct Node {
    Vma* vma;
    Mm* mm;
  };
  // vfio_pci_zap_and_vma_lock(): true with vma_lock held and the list empty;
  // false (try mode, contention) with nothing held.
  bool zapAndVmaLock(bool tryMode);
  bool listedLocked(const Vma& vma) const REQUIRES(vmaLock_);

  DesignOptions options_;
  mutable Mutex vmaLock_{kVfioVmaLockClass};
  mutable std::list<Node> vmaList_ GUARDED_BY(vmaLock_);
};

}  // namespace vfiomm
