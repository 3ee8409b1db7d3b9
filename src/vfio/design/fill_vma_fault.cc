#include "vfio/design/fill_vma_fault.h"

#include "mm/pfn_insert.h"
#include "mm/vma.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

VmFaultResult FillVmaFault::fault(VmFault& vmf) {
  Vma& vma = *vmf.vma;
  ReadGuard memory(vdev_.memoryLock());
  if (!vdev_.faultAllowedLocked()) return vmfault::kSigbus;
  const VmFaultResult ret = vmfInsertPfn(vma, vmf.address, pfnAt(vdev_, vma, vmf.address));
  if (ret & vmfault::kError) return ret;
  // Prefault the rest; stop at the first error and ignore it (FAULT-09).
  for (VirtAddr a = vma.start(); a < vma.end(); a = a + kPageSize) {
    if (a == vmf.address) continue;
    if (vmfInsertPfn(vma, a, pfnAt(vdev_, vma, a)) & vmfault::kError) break;
  }
  return ret;
}

}  // namespace vfiomm
