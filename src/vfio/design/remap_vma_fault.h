// The fault of Linux 5.8-6.9 (G1): the first fault of a VMA fills all of it
// with io_remap_pfn_range, 4 KiB PTEs from vm_pgoff (which VmaListTracking
// made the pfn), under the mmap *read* lock — so the mmap-lock write
// assertion fires where the profile's mm has it (FAULT-05) — and lists the
// VMA for the zap. The fill and the list are one critical section under
// vma_lock, so it works only with VmaListTracking.
#pragma once

#include "vfio/design/fault_policy.h"

namespace vfiomm {

class VmaListTracking;

class RemapVmaFault final : public FaultPolicy {
 public:
  RemapVmaFault(VfioPciCoreDevice& vdev, VmaListTracking& list) : vdev_(vdev), list_(list) {}

  VmFaultResult fault(VmFault& vmf) override;

 private:
  VfioPciCoreDevice& vdev_;
  VmaListTracking& list_;
};

}  // namespace vfiomm
