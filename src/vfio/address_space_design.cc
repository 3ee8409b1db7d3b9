#include "vfio/address_space_design.h"

#include "mm/address_space.h"
#include "mm/pfn_insert.h"
#include "mm/vma.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

Pfn AddressSpaceDesign::pfnAt(const Vma& vma, VirtAddr addr) const {
  return vdev_.vmaToPfn(vma) + ((addr - vma.start()) >> kPageShift);
}

VmFaultResult AddressSpaceDesign::fault(VmFault& vmf) const {
  Vma& vma = *vmf.vma;
  const Pfn pfn = pfnAt(vma, vmf.address);  // no lock needed
  if (faultWithoutMemoryLock_) return faultWithoutMemoryLock(vma, vmf.address, pfn);
  ReadGuard memory(vdev_.memoryLock());
  if (!vdev_.faultAllowedLocked()) return vmfault::kSigbus;
  return vmfInsertPfn(vma, vmf.address, pfn);
}

// Deliberately unlocked (the analysis would refuse it): the decode test and
// the insert are no longer one critical section against the zap.
VmFaultResult AddressSpaceDesign::faultWithoutMemoryLock(Vma& vma, VirtAddr addr, Pfn pfn) const
    NO_THREAD_SAFETY_ANALYSIS {
  if (!vdev_.faultAllowedLocked()) return vmfault::kSigbus;
  return vmfInsertPfn(vma, addr, pfn);
}

void AddressSpaceDesign::zapBars() {
  // BAR0 up to the ROM: device-specific regions are not zapped (ZAP-01).
  const uint64_t start = vfio::indexToOffset(vfio::kBar0);
  vdev_.mapping().unmapMappingRange(start, vfio::indexToOffset(vfio::kRom) - start, true);
}

// G2+: take the write lock first, then zap — a fault inside its read
// section finishes first and whatever it installed is zapped.
// (The seeded bug zapBeforeMemoryLock_ zaps first instead.)
void AddressSpaceDesign::zapAndDownWriteMemoryLock() NO_THREAD_SAFETY_ANALYSIS {
  if (zapBeforeMemoryLock_) zapBars();
  vdev_.downWriteMemoryLock();
  if (!zapBeforeMemoryLock_) zapBars();
  vdev_.noteZapLocked();
}

bool AddressSpaceDesign::tryZapAndDownWriteMemoryLock() NO_THREAD_SAFETY_ANALYSIS {
  if (zapBeforeMemoryLock_) zapBars();
  if (!vdev_.downWriteTrylockMemoryLock()) return false;
  if (!zapBeforeMemoryLock_) zapBars();
  vdev_.noteZapLocked();
  return true;
}

}  // namespace vfiomm
