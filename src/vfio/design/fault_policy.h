// How a design's ->fault and ->huge_fault fill page tables: the part of
// vfio_pci_mmap_fault() that changed from kernel to kernel. A policy object
// belongs to one device and holds whatever state its kernel kept.
#pragma once

#include "base/addr.h"
#include "mm/vm_fault.h"

namespace vfiomm {

class Vma;
class VfioPciCoreDevice;

class FaultPolicy {
 public:
  virtual ~FaultPolicy() = default;

  virtual VmFaultResult fault(VmFault& vmf) = 0;
  // Whether the design registers ->huge_fault at all; without it mm never
  // tries a huge order.
  virtual bool hasHugeFault() const { return false; }
  virtual VmFaultResult hugeFault(VmFault& vmf, unsigned order);
};

// vma_to_pfn() plus the page offset of `addr` in the VMA: the pfn a fault
// at `addr` maps, for every design that keeps the file offset in vm_pgoff.
Pfn pfnAt(VfioPciCoreDevice& vdev, const Vma& vma, VirtAddr addr);

}  // namespace vfiomm
