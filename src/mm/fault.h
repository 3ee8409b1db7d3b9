// The page-fault path (mm-pfnmap.md §9, §10): x86's do_user_addr_fault,
// handle_mm_fault with its huge-order sequence, fault accounting, and the
// GUP-side fixup_user_fault.
#pragma once

#include <cstdint>

#include "base/addr.h"
#include "base/result.h"
#include "hw/trap.h"
#include "mm/vm_fault.h"

namespace vfiomm {

class Mm;
class Vma;
struct Task;

// do_user_addr_fault(): the per-VMA-lock attempt, then the mmap-lock one;
// the VMA permission check; handle_mm_fault; signal delivery. A result with
// no signal means the access is to be retried.
SigInfo doUserAddrFault(Task& task, VirtAddr address, FaultAccess access);

// handle_mm_fault(vma, address, flags, regs): `user` false models regs ==
// NULL (GUP). Counts PGFAULT and the task's min/maj_flt as §10 says.
VmFaultResult handleMmFault(Task& task, Vma& vma, VirtAddr address, FaultFlags flags, bool user);

// smaps' THPeligible: __thp_vma_allowable_orders(vma, TVA_SMAPS |
// TVA_ENFORCE_SYSFS, THP_ORDERS_ALL) != 0 as of 6.12, for the VMAs the
// model has: private anonymous ones (PMD THP, the default mTHP settings)
// and special file mappings, which are eligible only with ->huge_fault.
bool thpEligibleForSmaps(const Vma& vma);

// fixup_user_fault(): fault one address in for a kernel caller (vfio's DMA
// mapping of a BAR mmap). Takes the mmap lock for read itself; SIGBUS
// becomes -EFAULT.
Status fixupUserFault(Task& task, Mm& mm, VirtAddr address, FaultFlags flags);

}  // namespace vfiomm
