// `fill-vma` (G2, Linux 6.10/6.11 as released): the seed's fault, and after a
// successful one every other page of the faulting VMA is inserted too, under
// the same memory_lock read hold (vfio-bar-mapping.md §5.3).
#pragma once

#include "vfio/address_space_design.h"

namespace vfiomm {

class FillVmaDesign : public AddressSpaceDesign {
 public:
  explicit FillVmaDesign(VfioPciCoreDevice& vdev) : AddressSpaceDesign(vdev) {}

  DesignKind kind() const override { return DesignKind::kFillVma; }
  VmFaultResult fault(VmFault& vmf) const override;
};

}  // namespace vfiomm
