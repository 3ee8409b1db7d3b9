#include "vfio/design/fault_policy.h"

#include "mm/vma.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

VmFaultResult FaultPolicy::hugeFault(VmFault&, unsigned) { return vmfault::kFallback; }

Pfn pfnAt(VfioPciCoreDevice& vdev, const Vma& vma, VirtAddr addr) {
  return vdev.vmaToPfn(vma) + ((addr - vma.start()) >> kPageShift);
}

}  // namespace vfiomm
