#include "vfio/design/remap_vma_fault.h"

#include "base/counter.h"
#include "mm/pfn_insert.h"
#include "mm/vma.h"
#include "vfio/design/vma_list_tracking.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(vmaListFills, "vfio.vma_list.fills", "G1 whole-VMA fills by a fault");

}  // namespace

VmFaultResult RemapVmaFault::fault(VmFault& vmf) {
  Vma& vma = *vmf.vma;
  MutexGuard list(list_.vmaLock());
  ReadGuard memory(vdev_.memoryLock());
  if (!vdev_.faultAllowedLocked()) return vmfault::kSigbus;
  // Another thread filled it already (FAULT-04).
  if (list_.listedLocked(vma)) return vmfault::kNoPage;
  // The whole VMA, whichever page faulted; vm_pgoff is the pfn.
  if (!ioRemapPfnRange(vma, vma.start(), Pfn(vma.pgoff().value()), vma.length(), vma.pageProt())) {
    zapVmaPtes(vma, vma.start(), vma.length());
    return vmfault::kSigbus;
  }
  list_.addLocked(vma);
  vmaListFills.add();
  return vmfault::kNoPage;
}

}  // namespace vfiomm
