// `huge-fault` (G3, Linux 6.12+): vfio_pci_mmap_huge_fault(vmf, order) for
// orders 18, 9 and 0, with the fallback rule of the profile's g3_variant:
// G3.0 (the misaligned-pfn leaf of bug 219619), G3.1 (the fallback race of
// bugzilla 220057), G3.2 (stable) — vfio-bar-mapping.md §5.4.
#pragma once

#include "vfio/address_space_design.h"

namespace vfiomm {

class HugeFaultDesign : public AddressSpaceDesign {
 public:
  explicit HugeFaultDesign(VfioPciCoreDevice& vdev) : AddressSpaceDesign(vdev) {}

  DesignKind kind() const override { return DesignKind::kHugeFault; }
  VmFaultResult fault(VmFault& vmf) const override { return hugeFault(vmf, 0); }
  bool hasHugeFault() const override { return true; }
  VmFaultResult hugeFault(VmFault& vmf, unsigned order) const override;

 protected:
  // The fallback test, done before any lock: the block to map, or nullopt.
  std::optional<VirtAddr> hugeBlock(const VmFault& vmf, unsigned order) const;
  // Inserts the entry of `order` for `block` (memory_lock held for read).
  VmFaultResult insert(VmFault& vmf, unsigned order, VirtAddr block) const;
};

}  // namespace vfiomm
