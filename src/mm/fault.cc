#include "mm/fault.h"

#include "base/assert.h"
#include "base/counter.h"
#include "mm/mm.h"
#include "mm/oom_kill.h"
#include "mm/task.h"
#include "mm/vm_operations.h"
#include "mm/vma.h"
#include "sync/lockdep.h"
#include "trace/tracer.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(pgfault, "vmstat.pgfault", "handle_mm_fault calls counted (PGFAULT)");
VFIOMM_COUNTER(vmaLockSuccess, "vmstat.vma_lock_success", "faults done under the per-VMA lock");
VFIOMM_COUNTER(vmaLockRetry, "vmstat.vma_lock_retry",
               "per-VMA-lock faults redone under the mmap lock");
VFIOMM_COUNTER(hugeFaultPud, "mm.fault.huge_fault.pud", "huge_fault(order 18) calls");
VFIOMM_COUNTER(hugeFaultPmd, "mm.fault.huge_fault.pmd", "huge_fault(order 9) calls");
VFIOMM_COUNTER(faultPte, "mm.fault.fault", "->fault (order 0) calls");
VFIOMM_COUNTER(fallbackPud, "mm.fault.fallback.pud", "huge_fault(18) returned FALLBACK");
VFIOMM_COUNTER(fallbackPmd, "mm.fault.fallback.pmd", "huge_fault(9) returned FALLBACK");
VFIOMM_COUNTER(faultSigbus, "mm.fault.sigbus", "faults ending in VM_FAULT_SIGBUS");

// thp_vma_suitable_order(vma, vm_end - size, order): the last huge page
// the VMA could hold lies inside it, and a file VMA's offset lines up.
bool suitableOrder(const Vma& vma, uint64_t size, bool anonymous) {
  const uint64_t pages = size >> kPageShift;
  if (!anonymous && ((vma.start().value() >> kPageShift) - vma.pgoff().value()) % pages != 0)
    return false;
  if (vma.length() < size) return false;
  const uint64_t haddr = (vma.end().value() - size) & ~(size - 1);
  return haddr >= vma.start().value();
}

// hugepage_global_enabled(), and VM_HUGEPAGE unless "always".
bool thpSysfsAllows(const Vma& vma) {
  switch (vma.mm().thpEnabled()) {
    case ThpEnabled::kAlways: return true;
    case ThpEnabled::kMadvise: return (vma.flags() & vm::kHugepage) != 0;
    case ThpEnabled::kNever: return false;
  }
  return false;
}

// What __thp_vma_allowable_orders() asks of a special (pfnmap) VMA before
// the sysfs setting and the alignment: a file mapping with VM_PFNMAP or
// VM_MIXEDMAP (vma_is_special_huge), ->huge_fault, and THP not turned off
// by MADV_NOHUGEPAGE or prctl.
bool specialHugeFaultVma(const Vma& vma) {
  const VmOperations* ops = vma.ops();
  if (ops == nullptr || !ops->hasHugeFault()) return false;
  if (vma.file() == nullptr || !(vma.flags() & (vm::kPfnmap | vm::kMixedmap))) return false;
  return !(vma.flags() & vm::kNoHugepage) && !vma.mm().thpDisabled();
}

// thp_vma_allowable_order(vma, TVA_IN_PF | TVA_ENFORCE_SYSFS, order) for a
// special (pfnmap) VMA: mm-pfnmap.md §9.3.
bool hugeOrderAllowed(const Vma& vma, unsigned order) {
  (void)order;  // THP_ORDERS_ALL_SPECIAL holds both PMD and PUD on x86-64
  if (!specialHugeFaultVma(vma)) return false;
  return !vma.mm().profile().thpSysfsGatesPfnmap || thpSysfsAllows(vma);
}

// vmf->pud and vmf->pmd: where __handle_mm_fault() has got to in the table.
// Each level's slot is found from the one above it, so one fault walks down
// from the PGD once, as the kernel's does.
struct FaultSlots {
  PageTable::Slot pud;
  PageTable::Slot pmd;
};

// pud_alloc() from the PGD, pmd_alloc() from vmf->pud.
PageTable::WalkStatus allocSlot(PageTable& pt, VirtAddr va, PtLevel level, FaultSlots& slots) {
  if (level == PtLevel::kPud) return pt.slotAt(va, PtLevel::kPud, true, &slots.pud);
  return pt.slotBelow(slots.pud, va, true, &slots.pmd);
}

// create_huge_pud / create_huge_pmd, or the already-a-leaf cases.
// Returns kFallback when the next smaller level is to be tried.
VmFaultResult hugeLevel(VmFault& vmf, PtLevel level, FaultSlots& slots) {
  Vma& vma = *vmf.vma;
  PageTable& pt = vma.mm().pageTable();
  switch (allocSlot(pt, vmf.address, level, slots)) {
    case PageTable::WalkStatus::kOk: break;
    case PageTable::WalkStatus::kHugeAbove: return vmfault::kNone;  // raced: retry the access
    default: return vmfault::kOom;
  }
  const PageTable::Slot& slot = level == PtLevel::kPud ? slots.pud : slots.pmd;
  const unsigned order = levelOrder(level);
  const uint64_t e = slot.entry->load(std::memory_order_acquire);
  const bool write = (vmf.flags & faultflag::kWrite) != 0;
  if (pte::isHugeLeaf(e) && !(write && !pte::isWritable(e)))
    return vmfault::kNone;                                                // *_set_accessed
  if (!pte::isNone(e) && !pte::isHugeLeaf(e)) return vmfault::kFallback;  // a table: go down
  if (!hugeOrderAllowed(vma, order)) return vmfault::kFallback;
  (level == PtLevel::kPud ? hugeFaultPud : hugeFaultPmd).add();
  const VmFaultResult ret = vma.ops()->hugeFault(vmf, order);
  if (ret & vmfault::kFallback) {
    (level == PtLevel::kPud ? fallbackPud : fallbackPmd).add();
    if (pte::isHugeLeaf(e)) {
      // wp_huge_*: the driver declined the write upgrade; split (= clear)
      // the leaf and let the smaller level fault.
      MmuGather tlb(vma.mm());
      const VirtAddr block = vmf.address.alignDown(levelSize(level));
      pt.zapRange(block, block + levelSize(level), tlb);
    }
  }
  return ret;
}

// handle_pte_fault -> do_pte_missing -> do_fault -> __do_fault.
VmFaultResult pteLevel(VmFault& vmf, const PageTable::Slot& pmd) {
  Vma& vma = *vmf.vma;
  PageTable::Slot slot;
  const auto st = vma.mm().pageTable().slotBelow(pmd, vmf.address, false, &slot);
  if (st == PageTable::WalkStatus::kHugeAbove) return vmfault::kNone;
  if (st == PageTable::WalkStatus::kOk && !pte::isNone(slot.entry->load(std::memory_order_acquire)))
    return vmfault::kNone;  // spurious: someone installed it
  const VmOperations* ops = vma.ops();
  if (ops == nullptr || !ops->hasFault()) return vmfault::kSigbus;
  // vmf_can_call_fault(): without ->map_pages the 4 KiB fault never runs
  // under the per-VMA lock alone: drop it and retry under the mmap lock.
  if (vmf.flags & faultflag::kVmaLock) {
    vma.endRead();
    return vmfault::kRetry;
  }
  faultPte.add();
  return ops->fault(vmf);
}

// `order`: the page order of the level whose answer is returned.
VmFaultResult handleMmFaultInner(VmFault& vmf, unsigned& order) {
  FaultSlots slots;
  for (PtLevel level : {PtLevel::kPud, PtLevel::kPmd}) {
    const VmFaultResult ret = hugeLevel(vmf, level, slots);
    order = levelOrder(level);
    if (!(ret & vmfault::kFallback)) return ret;
  }
  order = 0;
  return pteLevel(vmf, slots.pmd);
}

// The span of a fault: who takes it, where, and what came of it.
void traceFault(trace::EventKind kind, const Task& task, uint64_t begin, VirtAddr address,
                bool write, unsigned order, uint64_t result) {
  trace::Tracer& t = trace::Tracer::current();
  trace::setCurrentTask(task.pid, task.tid);
  trace::TraceEvent e;
  e.kind = kind;
  e.ts = begin;
  e.dur = t.now() - begin;
  e.addr = address.value();
  e.value = result;
  e.order = static_cast<uint8_t>(order);
  e.flags = write ? trace::eventflag::kWrite : uint8_t{0};
  t.record(e);
}

// mm_account_fault(). PGMAJFAULT is not its to count: the page cache and
// swap-in count it where they read from disk.
void accountFault(Task& task, VmFaultResult ret, FaultFlags flags, bool user) {
  if (ret & vmfault::kRetry) return;
  pgfault.add();
  if (ret & vmfault::kError) return;
  const bool major = (ret & vmfault::kMajor) || (flags & faultflag::kTried);
  if (major)
    task.majFlt.fetch_add(1, std::memory_order_relaxed);
  else
    task.minFlt.fetch_add(1, std::memory_order_relaxed);
  if (user && !major) task.perfMinor.fetch_add(1, std::memory_order_relaxed);
}

// x86 access_error().
bool accessError(const Vma& vma, FaultAccess access) {
  if (access == FaultAccess::kWrite) return !(vma.flags() & vm::kWrite);
  return !(vma.flags() & (vm::kRead | vm::kWrite | vm::kExec));
}

// The end of x86 do_user_addr_fault(): the signal a fault's result sends,
// if any. VM_FAULT_OOM sends none: pagefault_out_of_memory() logs it and
// the access is retried.
SigInfo signalFor(const Mm& mm, VmFaultResult ret, VirtAddr address) {
  if (ret & vmfault::kOom) {
    if (OomKill* oom = mm.oomKill()) oom->pagefaultOutOfMemory();
    return SigInfo{};
  }
  if (ret & (vmfault::kSigbus | vmfault::kHwpoison | vmfault::kHwpoisonLarge))
    return SigInfo{SigInfo::kSigbus, SigInfo::kBusAdrerr, address};
  if (ret & vmfault::kSigsegv) return SigInfo{SigInfo::kSigsegv, SigInfo::kSegvMaperr, address};
  return SigInfo{};
}

}  // namespace

VmFaultResult handleMmFault(Task& task, Vma& vma, VirtAddr address, FaultFlags flags, bool user) {
  VmFault vmf;
  vmf.vma = &vma;
  vmf.address = address.alignDown(kPageSize);
  vmf.realAddress = address;
  vmf.pgoff = vma.linearPageIndex(vmf.address);
  vmf.flags = flags;
  const uint64_t traced = trace::enabled() ? trace::Tracer::current().now() : UINT64_MAX;
  unsigned order = 0;
  const VmFaultResult ret = handleMmFaultInner(vmf, order);
  if (ret & vmfault::kSigbus) faultSigbus.add();
  accountFault(task, ret, flags, user);
  if (traced != UINT64_MAX) [[unlikely]]
    traceFault(trace::EventKind::kHandleMmFault, task, traced, address,
               (flags & faultflag::kWrite) != 0, order, ret);
  return ret;
}

namespace {

// lock_mm_and_find_vma(): the VMA of the retry, looked up again under the
// mmap lock. The seeded bug MmProfile::faultRetryReusesVma takes the one
// the per-VMA-lock attempt found instead, which a munmap may have removed
// since that attempt dropped its lock.
Vma* retryVma(Mm& mm, VirtAddr address, Vma* firstAttempt) REQUIRES_SHARED(mm.mmapLock()) {
  if (firstAttempt != nullptr && mm.profile().faultRetryReusesVma) [[unlikely]]
    return firstAttempt;
  return mm.findVma(address);
}

SigInfo doUserAddrFaultUntraced(Task& task, VirtAddr address, FaultAccess access) {
  lockdep::assertNoLocksHeld();
  Mm& mm = *task.mm;
  FaultFlags flags = faultflag::kAllowRetry | faultflag::kKillable | faultflag::kUser;
  if (access == FaultAccess::kWrite) flags |= faultflag::kWrite;

  Vma* firstAttempt = nullptr;  // dead once the attempt retried
  if (mm.profile().perVmaLock) {
    if (Vma* vma = mm.lockVmaUnderRcu(address)) {
      firstAttempt = vma;
      if (accessError(*vma, access)) {
        vma->endRead();
        return SigInfo{SigInfo::kSigsegv, SigInfo::kSegvAccerr, address};
      }
      const VmFaultResult ret =
          handleMmFault(task, *vma, address, flags | faultflag::kVmaLock, true);
      if (!(ret & (vmfault::kRetry | vmfault::kCompleted))) vma->endRead();
      if (!(ret & vmfault::kRetry)) {
        vmaLockSuccess.add();
        return signalFor(mm, ret, address);
      }
      vmaLockRetry.add();
    }
  }

  for (;;) {
    ReadGuard mmap(mm.mmapLock());
    Vma* vma = retryVma(mm, address, firstAttempt);
    if (vma == nullptr) return SigInfo{SigInfo::kSigsegv, SigInfo::kSegvMaperr, address};
    if (accessError(*vma, access)) return SigInfo{SigInfo::kSigsegv, SigInfo::kSegvAccerr, address};
    const VmFaultResult ret = handleMmFault(task, *vma, address, flags, true);
    if (!(ret & vmfault::kRetry)) return signalFor(mm, ret, address);
    flags |= faultflag::kTried;
  }
}

}  // namespace

SigInfo doUserAddrFault(Task& task, VirtAddr address, FaultAccess access) {
  if (!trace::enabled()) [[likely]]
    return doUserAddrFaultUntraced(task, address, access);
  trace::setCurrentTask(task.pid, task.tid);
  const uint64_t begin = trace::Tracer::current().now();
  const SigInfo sig = doUserAddrFaultUntraced(task, address, access);
  traceFault(trace::EventKind::kPageFault, task, begin, address, access == FaultAccess::kWrite, 0,
             static_cast<uint64_t>(sig.signo));
  return sig;
}

bool thpEligibleForSmaps(const Vma& vma) {
  if (vma.ops() == nullptr) {
    // Shared anonymous memory is shmem, whose shmem_enabled is "never"; a
    // file without vm_ops is a memfd's shmem or hugetlbfs, never a THP.
    if (vma.file() != nullptr) return false;
    if ((vma.flags() & (vm::kShared | vm::kNoHugepage)) || vma.mm().thpDisabled()) return false;
    return suitableOrder(vma, kPmdSize, true) && thpSysfsAllows(vma);
  }
  // "Trust that ->huge_fault() handlers know what they are doing"; no
  // other file the model maps can hold THPs.
  if (!specialHugeFaultVma(vma)) return false;
  if (!suitableOrder(vma, kPudSize, false) && !suitableOrder(vma, kPmdSize, false)) return false;
  return thpSysfsAllows(vma);
}

Status fixupUserFault(Task& task, Mm& mm, VirtAddr address, FaultFlags flags) {
  ReadGuard mmap(mm.mmapLock());
  Vma* vma = mm.findVma(address);
  if (vma == nullptr) return fail(Errno::kEFAULT);
  // vma_permits_fault(): stricter than the CPU's access_error(), a read
  // needs VM_READ.
  const VmFlags needs = (flags & faultflag::kWrite) ? vm::kWrite : vm::kRead;
  if (!(vma->flags() & needs)) return fail(Errno::kEFAULT);
  const VmFaultResult ret = handleMmFault(task, *vma, address, flags | faultflag::kRemote, false);
  if (ret & vmfault::kOom) return fail(Errno::kENOMEM);
  if (ret & vmfault::kError) return fail(Errno::kEFAULT);
  return ok();
}

}  // namespace vfiomm
