// The fault of the seed series (G2s): one 4 KiB PTE per fault with
// vmf_insert_pfn under memory_lock read (vfio-bar-mapping.md §5.2).
#pragma once

#include "vfio/design/fault_policy.h"

namespace vfiomm {

class RefillPolicy;

class PerPageFault final : public FaultPolicy {
 public:
  // `withoutMemoryLock`: the seeded bug DesignOptions::faultWithoutMemoryLock.
  PerPageFault(VfioPciCoreDevice& vdev, RefillPolicy& refill, bool withoutMemoryLock)
      : vdev_(vdev), refill_(refill), withoutMemoryLock_(withoutMemoryLock) {}

  VmFaultResult fault(VmFault& vmf) override;

 private:
  // The seeded bug of DesignOptions::faultWithoutMemoryLock.
  VmFaultResult faultWithoutMemoryLock(Vma& vma, VirtAddr addr, Pfn pfn);

  VfioPciCoreDevice& vdev_;
  RefillPolicy& refill_;
  const bool withoutMemoryLock_;
};

}  // namespace vfiomm
