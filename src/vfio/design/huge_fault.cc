#include "vfio/design/huge_fault.h"

#include "mm/mm.h"
#include "mm/pfn_insert.h"
#include "mm/vma.h"
#include "vfio/design/refill_policy.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

std::optional<VirtAddr> HugeFault::hugeBlock(const VmFault& vmf, unsigned order) const {
  const Vma& vma = *vmf.vma;
  if (order == 0) return vmf.address;
  const uint64_t size = kPageSize << order;
  switch (vdev_.profile().g3Variant) {
    case G3Variant::kG3_0:
      // The block starting at the fault address; the pfn is not checked.
      if (!vmf.address.isAligned(size) || vmf.address + size > vma.end()) return std::nullopt;
      return vmf.address;
    case G3Variant::kG3_1:
      if (!vmf.address.isAligned(size) || vmf.address + size > vma.end() ||
          !pfnAt(vdev_, vma, vmf.address).isAligned(order))
        return std::nullopt;
      return vmf.address;
    case G3Variant::kG3_2: {
      // "Align huge faults to order": any address inside an aligned block.
      const VirtAddr block = vmf.address.alignDown(size);
      if (block < vma.start() || block + size > vma.end() ||
          !pfnAt(vdev_, vma, block).isAligned(order))
        return std::nullopt;
      return block;
    }
  }
  return std::nullopt;
}

VmFaultResult HugeFault::insert(VmFault& vmf, unsigned order, VirtAddr block, Pfn pfn,
                                InsertLock lock) {
  if (order == 0) return vmfInsertPfn(*vmf.vma, vmf.address, pfn, lock);
  VmFault huge = vmf;
  huge.address = block;
  if (order == kPmdOrder) return vmfInsertPfnPmd(huge, pfn, false, lock);
  if (order == kPudOrder) return vmfInsertPfnPud(huge, pfn, false, lock);
  return vmfault::kFallback;
}

VmFaultResult HugeFault::hugeFault(VmFault& vmf, unsigned order) {
  if (order != 0 && order != kPmdOrder && order != kPudOrder) return vmfault::kFallback;
  const std::optional<VirtAddr> block = hugeBlock(vmf, order);
  if (!block) return vmfault::kFallback;  // no lock taken
  ReadGuard memory(vdev_.memoryLock());
  // A huge-level SIGBUS is final, not a fallback (HUGE-08).
  if (!vdev_.faultAllowedLocked()) return vmfault::kSigbus;
  const VmFaultResult ret = insert(vmf, order, *block, pfnAt(vdev_, *vmf.vma, *block), lock_);
  if (!(ret & vmfault::kError)) refill_.faulted(*vmf.vma);
  return ret;
}

}  // namespace vfiomm
