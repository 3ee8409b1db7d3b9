#include "vfio/design/per_page_fault.h"

#include "mm/pfn_insert.h"
#include "vfio/design/refill_policy.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

VmFaultResult PerPageFault::fault(VmFault& vmf) {
  Vma& vma = *vmf.vma;
  const Pfn pfn = pfnAt(vdev_, vma, vmf.address);  // no lock needed
  if (withoutMemoryLock_) return faultWithoutMemoryLock(vma, vmf.address, pfn);
  ReadGuard memory(vdev_.memoryLock());
  if (!vdev_.faultAllowedLocked()) return vmfault::kSigbus;
  const VmFaultResult ret = vmfInsertPfn(vma, vmf.address, pfn);
  if (!(ret & vmfault::kError)) refill_.faulted(vma);
  return ret;
}

// Deliberately unlocked (the analysis would refuse it): the decode test and
// the insert are no longer one critical section against the zap.
VmFaultResult PerPageFault::faultWithoutMemoryLock(Vma& vma, VirtAddr addr,
                                                   Pfn pfn) NO_THREAD_SAFETY_ANALYSIS {
  if (!vdev_.faultAllowedLocked()) return vmfault::kSigbus;
  return vmfInsertPfn(vma, addr, pfn);
}

}  // namespace vfiomm
