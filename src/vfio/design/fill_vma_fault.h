// The fault of Linux 6.10/6.11 as released (G2): the seed's fault, and after
// a successful one every other page of the faulting VMA is inserted too,
// under the same memory_lock read hold (vfio-bar-mapping.md §5.3). It maps
// the whole VMA, so a refill policy has nothing to add after its faults.
#pragma once

#include "vfio/design/fault_policy.h"

namespace vfiomm {

class FillVmaFault final : public FaultPolicy {
 public:
  explicit FillVmaFault(VfioPciCoreDevice& vdev) : vdev_(vdev) {}

  VmFaultResult fault(VmFault& vmf) override;

 private:
  VfioPciCoreDevice& vdev_;
};

}  // namespace vfiomm
