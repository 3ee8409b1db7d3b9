// `address-space` (G2s, the seed series): one 4 KiB PTE per fault with
// vmf_insert_pfn under memory_lock read; the zap is unmap_mapping_range over
// the device inode's address space (vfio-bar-mapping.md §5.2, §7.1, §12).
#pragma once

#include "vfio/mapping_design.h"

namespace vfiomm {

class AddressSpaceDesign : public MappingDesign {
 public:
  // Only the seeded bugs of `options` apply (the subclasses pass none).
  explicit AddressSpaceDesign(VfioPciCoreDevice& vdev, const DesignOptions& options = {})
      : MappingDesign(vdev),
        faultWithoutMemoryLock_(options.faultWithoutMemoryLock),
        zapBeforeMemoryLock_(options.zapBeforeMemoryLock) {}

  DesignKind kind() const override { return DesignKind::kAddressSpace; }
  bool hasFault() const override { return true; }
  VmFaultResult fault(VmFault& vmf) const override;

  void zapBars() override;
  void zapAndDownWriteMemoryLock() override;
  bool tryZapAndDownWriteMemoryLock() override;

 protected:
  // The pfn backing `addr` of the faulting VMA.
  Pfn pfnAt(const Vma& vma, VirtAddr addr) const;

 private:
  // The seeded bug of DesignOptions::faultWithoutMemoryLock.
  VmFaultResult faultWithoutMemoryLock(Vma& vma, VirtAddr addr, Pfn pfn) const;

  const bool faultWithoutMemoryLock_;
  const bool zapBeforeMemoryLock_;  // DesignOptions::zapBeforeMemoryLock
};

}  // namespace vfiomm
