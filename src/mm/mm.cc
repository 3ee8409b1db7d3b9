#include "mm/mm.h"

#include <algorithm>

#include "base/assert.h"
#include "base/counter.h"
#include "hw/machine.h"
#include "mm/address_space.h"
#include "mm/file.h"
#include "mm/pfn_insert.h"
#include "mm/pte.h"
#include "mm/system_ram.h"
#include "mm/vm_commit.h"
#include "mm/vm_operations.h"
#include "sync/lockdep.h"

namespace vfiomm {

namespace {

constexpr uint64_t kMmapMinAddr = 0x10000;        // vm.mmap_min_addr
constexpr uint64_t kMmapBase = 0x7f00'0000'0000;  // mm->mmap_base (top-down start)
constexpr uint64_t kUserTop = 1ULL << 47;         // ceiling for free_pgtables

AddressSpace* mappingOf(const Vma& vma) {
  return vma.file() != nullptr ? vma.file()->mapping() : nullptr;
}

void openVma(Vma& vma) {
  if (vma.ops() != nullptr) vma.ops()->open(vma);
}

}  // namespace

Mm::Mm(Machine& machine, MmProfile profile)
    : id_(machine.newMmId()),
      machine_(machine),
      profile_(profile),
      pageTable_(machine.pageTableArena()) {}

Mm::Mm(Machine& machine, const Mm& parent)
    : id_(machine.newMmId()),
      machine_(machine),
      profile_(parent.profile_),
      pageTable_(machine.pageTableArena()),
      vmCommit_(parent.vmCommit_),
      patMemtype_(parent.patMemtype_),
      oomKill_(parent.oomKill_),
      systemRam_(parent.systemRam_),
      thpEnabled_(parent.thpEnabled_),
      thpDisabled_(parent.thpDisabled_) {}

// The last reference is gone, so nobody can hold mmap_lock: exited_ is read
// without it, and a process that exited does not take the lock again (its
// last reference may drop on a thread that runs no kernel any more).
MmuContext::Leaf Mm::walk(VirtAddr va) {
  const PageTable::Translation t = pageTable_.translate(va);
  return {t.present, (t.entry & pte::kUser) != 0, pte::isWritable(t.entry), t.level, t.pfn};
}

Mm::~Mm() NO_THREAD_SAFETY_ANALYSIS {
  if (!exited_) exitMmap();
}

void Mm::mmapWriteLock() { mmapLock_.downWrite(); }

void Mm::mmapWriteUnlock() {
  std::vector<std::shared_ptr<File>> files;
  files.swap(deferredFput_);
  // vma_end_write_all(): bumping mm_lock_seq releases every VMA write lock.
  mmLockSeq_.fetch_add(1, std::memory_order_acq_rel);
  mmapLock_.upWrite();
}  // the deferred fput()s

// RAII for the syscalls: mmap_write_lock() ... mmap_write_unlock().
class SCOPED_CAPABILITY MmapWriteGuard {
 public:
  explicit MmapWriteGuard(Mm& mm) ACQUIRE(mm.mmapLock()) : mm_(mm) { mm_.mmapWriteLock(); }
  ~MmapWriteGuard() RELEASE() { mm_.mmapWriteUnlock(); }
  MmapWriteGuard(const MmapWriteGuard&) = delete;
  MmapWriteGuard& operator=(const MmapWriteGuard&) = delete;

 private:
  Mm& mm_;
};

// ---------------------------------------------------------------------------
// VMA tree and per-VMA locks

Vma* Mm::findVma(VirtAddr addr) {
  auto it = vmas_.upper_bound(addr.value());
  if (it == vmas_.begin()) return nullptr;
  --it;
  return it->second->contains(addr) ? it->second.get() : nullptr;
}

// Reads the tree under its own lock instead of the mmap lock: this models
// the RCU walk of the maple tree, which writers update while holding both.
Vma* Mm::lockVmaUnderRcu(VirtAddr addr) NO_THREAD_SAFETY_ANALYSIS {
  SpinGuard tree(vmaTreeLock_);
  Vma* vma = findVma(addr);
  if (vma == nullptr) return nullptr;
  // vma_start_read(): fail while a writer has marked the VMA this cycle.
  if (vma->vmLockSeq().load(std::memory_order_acquire) == mmLockSeq()) return nullptr;
  if (!vma->vmLock().downReadTrylock()) return nullptr;
  if (vma->vmLockSeq().load(std::memory_order_acquire) == mmLockSeq()) {
    vma->vmLock().upRead();
    return nullptr;
  }
  return vma;
}

void Mm::vmaStartWrite(Vma& vma) {
  const int64_t seq = mmLockSeq();
  if (vma.vmLockSeq().load(std::memory_order_relaxed) == seq) return;
  // Waits for the per-VMA-lock readers in flight, then marks the VMA.
  vma.vmLock().downWrite();
  vma.vmLockSeq().store(seq, std::memory_order_release);
  vma.vmLock().upWrite();
}

bool Mm::vmaIsWriteLocked(const Vma& vma) const {
  auto& v = const_cast<Vma&>(vma);
  return v.vmLockSeq().load(std::memory_order_acquire) == mmLockSeq();
}

void Mm::insertVma(std::unique_ptr<Vma> vma) {
  SpinGuard tree(vmaTreeLock_);
  const uint64_t start = vma->start().value();
  vmas_.emplace(start, std::move(vma));
  mapCount_.fetch_add(1, std::memory_order_relaxed);
}

std::unique_ptr<Vma> Mm::detachVma(Vma& vma) {
  SpinGuard tree(vmaTreeLock_);
  auto it = vmas_.find(vma.start().value());
  VFIOMM_ASSERT(it != vmas_.end() && it->second.get() == &vma);
  std::unique_ptr<Vma> owned = std::move(it->second);
  vmas_.erase(it);
  mapCount_.fetch_sub(1, std::memory_order_relaxed);
  return owned;
}

void Mm::linkFile(Vma& vma, Vma* after) {
  AddressSpace* mapping = mappingOf(vma);
  if (mapping == nullptr) return;
  WriteGuard i(mapping->iMmapRwsem());
  if (after != nullptr)
    mapping->insertVmaAfter(*after, vma);
  else
    mapping->insertVma(vma);
}

void Mm::unlinkFile(Vma& vma) {
  AddressSpace* mapping = mappingOf(vma);
  if (mapping == nullptr) return;
  WriteGuard i(mapping->iMmapRwsem());
  mapping->removeVma(vma);
}

void Mm::removeVma(std::unique_ptr<Vma> vma) {
  // remove_vma(): ->close, then fput (deferred to the unlock); the unmap
  // before it returned the VMA's commit charge.
  if (vma->flags() & vm::kAccount) uncharge(vma->pages());
  if (vma->ops() != nullptr) vma->ops()->close(*vma);
  if (vma->fileRef() != nullptr) deferredFput_.push_back(vma->fileRef());
  if (profile_.faultRetryReusesVma) [[unlikely]]
    retired_.push_back(std::move(vma));
}

void Mm::setOwner(int pid, std::string comm) {
  ownerPid_ = pid;
  ownerComm_ = std::move(comm);
}

Status Mm::charge(uint64_t pages) {
  if (vmCommit_ == nullptr || pages == 0) return ok();
  uint64_t totalVm = 0;  // mm->total_vm
  for (const auto& [start, vma] : vmas_) totalVm += vma->pages();
  return vmCommit_->enoughMemory(pages, VmCommit::Caller{ownerPid_, ownerComm_, totalVm},
                                 profile_.vmeLogBytes);
}

void Mm::uncharge(uint64_t pages) {
  if (vmCommit_ != nullptr) vmCommit_->unacct(pages);
}

uint64_t Mm::accountedPagesIn(VirtAddr start, VirtAddr end) {
  uint64_t pages = 0;
  for (Vma* v : vmasIn(start, end))
    if (v->flags() & vm::kAccount)
      pages += (std::min(end, v->end()) - std::max(start, v->start())) >> kPageShift;
  return pages;
}

std::vector<Vma*> Mm::vmasIn(VirtAddr start, VirtAddr end) {
  std::vector<Vma*> out;
  auto it = vmas_.upper_bound(start.value());
  if (it != vmas_.begin()) --it;
  for (; it != vmas_.end() && it->second->start() < end; ++it)
    if (it->second->end() > start) out.push_back(it->second.get());
  return out;
}

std::vector<Vma*> Mm::vmasMapping(const AddressSpace& mapping) {
  std::vector<Vma*> out;
  for (const auto& [start, vma] : vmas_)
    if (mappingOf(*vma) == &mapping) out.push_back(vma.get());
  return out;
}

void Mm::forEachVma(const std::function<void(const Vma&)>& fn) {
  ReadGuard guard(mmapLock_);
  for (const auto& [start, vma] : vmas_) fn(*vma);
}

std::vector<VmaSnapshot> Mm::vmaSnapshot() {
  ReadGuard guard(mmapLock_);
  std::vector<VmaSnapshot> out;
  for (const auto& [start, vma] : vmas_) out.push_back(vma->snapshot());
  return out;
}

// ---------------------------------------------------------------------------
// TLB flushing and accounting

void Mm::flushTlbRange(VirtAddr start, VirtAddr end, unsigned strideShift, bool freedTables) {
  // The cleared entries must be visible before the cpumask is read (a
  // store-load pair): otherwise a CPU that joins the mask (switch_mm) just
  // as the zap ends can walk the old entry into its TLB and be left out of
  // the flush. On x86, ptep_get_and_clear()'s locked xchg is that barrier;
  // some of the model's clears are plain release stores.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  machine_.flushTlbMmRange(id_, cpumask(), start, end, strideShift, freedTables,
                           machine_.currentCpuId());
}

TlbFlushFn Mm::tlbFlusher() {
  return [this](VirtAddr s, VirtAddr e, unsigned stride, bool freed) {
    flushTlbRange(s, e, stride, freed);
  };
}

void Mm::notePgtablesBytes() {
  const uint64_t now = pageTable_.pgtablesBytes();
  uint64_t peak = pgtablesPeak_.load(std::memory_order_relaxed);
  while (now > peak && !pgtablesPeak_.compare_exchange_weak(peak, now)) {
  }
}

// ---------------------------------------------------------------------------
// Address selection (mm-pfnmap.md §3)

bool Mm::rangeIsFree(uint64_t start, uint64_t end) {
  return vmasIn(VirtAddr(start), VirtAddr(end)).empty();
}

Result<VirtAddr> Mm::unmappedAreaTopDown(uint64_t len, uint64_t align, uint64_t alignOffset) {
  // Walk the gaps from the top of the mmap area down; take the highest
  // address in a gap that fits `len` at the requested alignment.
  uint64_t gapEnd = kMmapBase;
  auto consider = [&](uint64_t gapStart) -> std::optional<uint64_t> {
    gapStart = std::max(gapStart, kMmapMinAddr);
    if (gapEnd < gapStart + len) return std::nullopt;
    uint64_t start = gapEnd - len;
    start -= (start - alignOffset) & (align - 1);
    if (start < gapStart) return std::nullopt;
    return start;
  };
  for (auto it = vmas_.rbegin(); it != vmas_.rend(); ++it) {
    const Vma& v = *it->second;
    if (v.start().value() >= gapEnd) continue;
    if (v.end().value() < gapEnd) {
      if (auto a = consider(v.end().value())) return VirtAddr(*a);
    }
    gapEnd = std::min(gapEnd, v.start().value());
  }
  if (auto a = consider(0)) return VirtAddr(*a);
  return fail(Errno::kENOMEM);
}

Result<VirtAddr> Mm::getUnmappedArea(File* file, VirtAddr addr, uint64_t len, uint64_t pgoff,
                                     int flags) {
  if (len > kTaskSize) return fail(Errno::kENOMEM);
  if (const uint64_t huge = file != nullptr ? file->hugePageSize() : 0; huge != 0) {
    // hugetlb_get_unmapped_area(): huge pages need a huge-page aligned
    // range; a fixed one that is not is refused.
    if (!isAligned(len, huge)) return fail(Errno::kEINVAL);
    if ((flags & map::kFixed) && !addr.isAligned(huge)) return fail(Errno::kEINVAL);
    if (!(flags & map::kFixed)) return unmappedAreaTopDown(len, huge, 0);
  }
  if (flags & map::kFixed) {
    // __get_unmapped_area()'s checks of the fixed address, in its order.
    if (addr.value() > kTaskSize - len) return fail(Errno::kENOMEM);
    if (!addr.isAligned(kPageSize)) return fail(Errno::kEINVAL);
    return addr;
  }
  if (file != nullptr) {
    if (auto own = file->getUnmappedArea(addr, len, pgoff, flags)) return *own;
  }
  // thp_get_unmapped_area_vmflags() for files without their own hook.
  const FileThpPlacement thp = profile_.fileThpPlacement;
  const bool thpPath = file != nullptr && thp != FileThpPlacement::kOff &&
                       !(addr.value() != 0 && profile_.thpPlacementNeedsNullHint) &&
                       !(thp == FileThpPlacement::kPmdLen && !isAligned(len, kPmdSize));
  if (thpPath) {
    const uint64_t off = pgoff << kPageShift;
    const uint64_t offAlign = (off + kPmdSize - 1) & kPmdMask;
    const uint64_t offEnd = (off + len) & kPmdMask;
    if (offEnd > offAlign && offEnd - offAlign >= kPmdSize && len + kPmdSize > len) {
      // __thp_get_unmapped_area: room for len + 2 MiB (at the hint if it
      // has it), then shifted so that the address is congruent to the
      // file offset modulo 2 MiB. Top-down, a hole that already is sits
      // 2 MiB below the top of the room: the mapping takes the top.
      if (auto padded = searchArea(addr, len + kPmdSize)) {
        if (*padded == addr) return addr;
        const uint64_t offSub = (off - padded->value()) & (kPmdSize - 1);
        return *padded + (offSub == 0 ? kPmdSize : offSub);
      }
    }
  }
  return searchArea(addr, len);
}

Result<VirtAddr> Mm::searchArea(VirtAddr hint, uint64_t len) {
  if (hint.value() != 0) {
    const uint64_t a = pageAlignUp(hint.value());
    if (a >= kMmapMinAddr && a <= kTaskSize - len && rangeIsFree(a, a + len)) return VirtAddr(a);
  }
  return unmappedAreaTopDown(len, kPageSize, 0);
}

// ---------------------------------------------------------------------------
// mmap

Result<VirtAddr> Mm::mmap(VirtAddr addr, uint64_t len, int prot, int flags,
                          std::shared_ptr<File> file, uint64_t offset,
                          const MemlockRights& current) {
  if (!isPageAligned(offset)) return fail(Errno::kEINVAL);
  if (!(flags & map::kAnonymous)) {
    // ksys_mmap_pgoff(): the fd first; a hugetlbfs file's length is rounded
    // up to its huge page, and MAP_HUGETLB asks for one.
    if (file == nullptr) return fail(Errno::kEBADF);
    if (const uint64_t huge = file->hugePageSize(); huge != 0)
      len = (len + huge - 1) & ~(huge - 1);  // 0 when it wraps: -EINVAL below, as in Linux
    else if (flags & map::kHugetlb)
      return fail(Errno::kEINVAL);
  }
  if (len == 0) return fail(Errno::kEINVAL);
  const uint64_t alignedLen = pageAlignUp(len);
  if (alignedLen == 0 || alignedLen > kTaskSize) return fail(Errno::kENOMEM);
  const uint64_t pgoff = offset >> kPageShift;
  if (pgoff + (alignedLen >> kPageShift) < pgoff) return fail(Errno::kEOVERFLOW);
  if (flags & map::kFixedNoReplace) flags |= map::kFixed;
  if (flags & map::kAnonymous) file = nullptr;

  MmapWriteGuard guard(*this);
  // An exited mm takes no new mapping: it would outlive the mm's owner,
  // still linked in the file's i_mmap (finding 8). Every call is refused.
  if (exited_) return fail(Errno::kENOMEM);
  auto where = getUnmappedArea(file.get(), addr, alignedLen, pgoff, flags);
  if (!where) return where;
  if (!where->isAligned(kPageSize)) return fail(Errno::kEINVAL);
  if ((flags & map::kFixedNoReplace) && !rangeIsFree(where->value(), where->value() + alignedLen))
    return fail(Errno::kEEXIST);
  if (flags & map::kLocked) {
    if (!current.canMlock()) return fail(Errno::kEPERM);
    if (!current.allows(lockedVm(), alignedLen >> kPageShift)) return fail(Errno::kEAGAIN);
  }

  VmFlags vmFlags = protToVmFlags(prot) | vm::kMayRead | vm::kMayWrite | vm::kMayExec;
  if (flags & map::kLocked) vmFlags |= vm::kLocked;  // calc_vm_flag_bits()
  const int type = flags & map::kTypeMask;
  if (file != nullptr) {
    switch (type) {
      case map::kSharedValidate:
        if (flags & ~(map::kLegacyMask | file->supportedMapFlags()))
          return fail(Errno::kEOPNOTSUPP);
        [[fallthrough]];
      case map::kShared:
        if ((prot & prot::kWrite) && !file->writable()) return fail(Errno::kEACCES);
        vmFlags |= vm::kShared | vm::kMayShare;
        // A file not open for write: a shared mapping that can never be
        // written, so not VM_SHARED either (only VM_MAYSHARE stays).
        if (!file->writable()) vmFlags &= ~(vm::kMayWrite | vm::kShared);
        [[fallthrough]];
      case map::kPrivate:
        if (!file->readable()) return fail(Errno::kEACCES);
        if (file->pathNoexec()) {
          if (vmFlags & vm::kExec) return fail(Errno::kEPERM);
          vmFlags &= ~vm::kMayExec;
        }
        if (!file->hasMmap()) return fail(Errno::kENODEV);
        if (flags & map::kGrowsDown) return fail(Errno::kEINVAL);  // VM_GROWSDOWN
        break;
      default: return fail(Errno::kEINVAL);
    }
  } else {
    if (type == map::kShared || type == map::kSharedValidate)
      vmFlags |= vm::kShared | vm::kMayShare;
    else if (type != map::kPrivate)
      return fail(Errno::kEINVAL);
  }
  // do_mmap() honours MAP_NORESERVE only where overcommit is allowed.
  const bool strict =
      vmCommit_ != nullptr && vmCommit_->memory().overcommitMemory == OvercommitMode::kNever;
  if ((flags & map::kNoReserve) && !strict) vmFlags |= vm::kNoReserve;
  return mmapRegion(std::move(file), *where, alignedLen, vmFlags, PgOff(pgoff));
}

Result<VirtAddr> Mm::mmapRegion(std::shared_ptr<File> file, VirtAddr addr, uint64_t len,
                                VmFlags flags, PgOff pgoff) {
  // accountable_mapping(): private, writable, not NORESERVE, not hugetlb
  // (a hugetlbfs file reserves its own pages, hugetlb_reserve_pages()). Its
  // pages are charged before the VMA exists and before the driver's ->mmap
  // runs (vfio-uapi.md §10, UAPI-33, UAPI-34).
  const uint64_t pages = len >> kPageShift;
  const bool accountable = (flags & (vm::kNoReserve | vm::kShared | vm::kWrite)) == vm::kWrite &&
                           (file == nullptr || file->hugePageSize() == 0);
  if (profile_.fixedMapSurvivesChargeFail) {
    // The charge comes first, less the accounted pages of the mappings it
    // replaces (they pass to the new one); a refusal leaves them mapped
    // (UAPI-35).
    if (accountable) {
      const uint64_t replaced = accountedPagesIn(addr, addr + len);
      if (auto st = charge(pages - replaced); !st) return fail(st.error());
      if (vmCommit_ != nullptr) vmCommit_->acct(replaced);  // the unmap returns them
    }
    if (auto st = doMunmap(addr, len); !st) {
      if (accountable) uncharge(pages);
      return fail(st.error());
    }
  } else {
    // The old mappings are gone before the charge: a refusal leaves a hole.
    if (auto st = doMunmap(addr, len); !st) return fail(st.error());
    if (accountable) {
      if (auto st = charge(pages); !st) return fail(st.error());
    }
  }
  if (accountable) flags |= vm::kAccount;
  // mmap_region(): every new VMA starts soft-dirty (smaps `sd`).
  flags |= vm::kSoftDirty;
  auto vma = std::make_unique<Vma>(*this, addr, addr + len, pgoff, flags);
  vma->setPageProt(vmGetPageProt(flags));
  if (file != nullptr) {
    vma->setFile(file);
    // call_mmap(): the driver sees the VMA before anyone else can. Its
    // refusal returns the charge; the old range stays unmapped.
    if (auto st = file->mmap(*vma); !st) {
      if (accountable) uncharge(pages);
      return fail(st.error());
    }
  }
  // mmap_region(): a driver's VM_SPECIAL mapping, or hugetlb, is never
  // locked; any other MAP_LOCKED mapping counts in locked_vm.
  if (vma->flags() & vm::kLocked) {
    if (vma->flags() & (vm::kSpecial | vm::kHugetlb))
      vma->initFlags(vma->flags() & ~vm::kLocked);
    else
      addLockedVm(pages);
  }
  Vma& v = *vma;
  insertVma(std::move(vma));
  linkFile(v, nullptr);
  return addr;
}

// ---------------------------------------------------------------------------
// split, munmap

Result<Vma*> Mm::splitVma(Vma& vma, VirtAddr addr, bool newBelow) {
  if (vma.ops() != nullptr) {
    if (auto st = vma.ops()->maySplit(vma, addr); !st) return fail(st.error());
  }
  std::unique_ptr<Vma> fresh = vma.dup(*this);
  const uint64_t lowerPages = (addr - vma.start()) >> kPageShift;
  if (newBelow)
    fresh->setRange(vma.start(), addr, vma.pgoff());
  else
    fresh->setRange(addr, vma.end(), vma.pgoff() + lowerPages);
  // The new structure is opened before anything links it (G1's ->open zaps
  // its range, which still holds the old structure's entries).
  openVma(*fresh);
  vmaStartWrite(vma);
  {
    // vma_adjust_trans_huge(): a huge leaf across the split point goes.
    MmuGather tlb(*this);
    pageTable_.splitHugeAt(addr, tlb);
  }
  AddressSpace* mapping = mappingOf(vma);
  auto owned = detachVma(vma);
  if (mapping != nullptr) {
    WriteGuard i(mapping->iMmapRwsem());
    mapping->removeVma(vma);
    if (newBelow)
      vma.setRange(addr, vma.end(), vma.pgoff() + lowerPages);
    else
      vma.setRange(vma.start(), addr, vma.pgoff());
    mapping->insertVma(vma);
    mapping->insertVma(*fresh);
  } else if (newBelow) {
    vma.setRange(addr, vma.end(), vma.pgoff() + lowerPages);
  } else {
    vma.setRange(vma.start(), addr, vma.pgoff());
  }
  insertVma(std::move(owned));
  Vma* result = fresh.get();
  insertVma(std::move(fresh));
  return result;
}

Status Mm::munmap(VirtAddr addr, uint64_t len) {
  if (!addr.isAligned(kPageSize) || len == 0 || len > kTaskSize || addr.value() > kTaskSize - len)
    return fail(Errno::kEINVAL);
  MmapWriteGuard guard(*this);
  if (exited_) return fail(Errno::kEINVAL);
  return doMunmap(addr, pageAlignUp(len));
}

Status Mm::splitAround(VirtAddr start, VirtAddr end, bool forMunmap) {
  // Which side of each split is the new structure (mm-pfnmap.md §12).
  const bool v61 = forMunmap && profile_.munmapSplitStyle == MunmapSplitStyle::kV6_1;
  std::vector<Vma*> hit = vmasIn(start, end);
  if (hit.empty()) return ok();
  Vma* first = hit.front();
  if (first->start() < start) {
    // v6.1 munmap: the new structure takes [start, e); otherwise the kept
    // lower piece [s, start) is the new one.
    auto r = splitVma(*first, start, /*newBelow=*/!v61);
    if (!r) return fail(r.error());
  }
  hit = vmasIn(start, end);
  Vma* last = hit.back();
  if (last->end() > end) {
    // v6.1 munmap: the new structure is the removed lower piece; otherwise
    // the kept upper piece [end, e).
    auto r = splitVma(*last, end, /*newBelow=*/v61);
    if (!r) return fail(r.error());
  }
  return ok();
}

Status Mm::doMunmap(VirtAddr start, uint64_t len) {
  const VirtAddr end = start + len;
  if (vmasIn(start, end).empty()) return ok();
  if (auto st = splitAround(start, end, true); !st) return st;
  std::vector<std::unique_ptr<Vma>> gone;
  for (Vma* v : vmasIn(start, end)) {
    vmaStartWrite(*v);
    // vms_complete_munmap_vmas(): locked_vm gives back the locked pages.
    if (v->flags() & vm::kLocked) subLockedVm(v->pages());
    gone.push_back(detachVma(*v));
  }
  {
    // unmap_region(): zap, then free_pgtables (which unlinks file VMAs),
    // with one TLB flush before any table page is freed.
    MmuGather tlb(*this);
    unmapVmas(gone, tlb);
    for (auto& v : gone) unlinkFile(*v);
    uint64_t floor = 0;
    uint64_t ceiling = kUserTop;
    auto next = vmas_.lower_bound(start.value());
    if (next != vmas_.end()) ceiling = next->second->start().value();
    if (next != vmas_.begin()) floor = std::prev(next)->second->end().value();
    pageTable_.freePgtables(start, end, VirtAddr(floor), VirtAddr(ceiling), tlb);
  }
  for (auto& v : gone) removeVma(std::move(v));
  return ok();
}

void Mm::unmapVmas(const std::vector<std::unique_ptr<Vma>>& gone, MmuGather& tlb) {
  for (const auto& v : gone) {
    untrackPfn(*v);  // unmap_single_vma()'s, before the entries go
    pageTable_.zapRange(v->start(), v->end(), tlb);
    if (v->file() == nullptr) forgetAnonPages(v->start(), v->end());
  }
}

void Mm::forgetAnonPages(VirtAddr start, VirtAddr end) {
  if (systemRam_ != nullptr) systemRam_->forgetFrames(id_, start, end);
}

void Mm::zapPageRangeSingle(VirtAddr start, VirtAddr end) {
  MmuGather tlb(*this);
  pageTable_.zapRange(start, end, tlb);
}

// ---------------------------------------------------------------------------
// mprotect, madvise, mlock, mincore

Status Mm::mprotect(VirtAddr start, uint64_t len, int protBits) {
  // do_mprotect_pkey()'s order: the bits are checked (arch_validate_prot)
  // only for a non-empty range.
  const int grows = protBits & (prot::kGrowsDown | prot::kGrowsUp);
  protBits &= ~(prot::kGrowsDown | prot::kGrowsUp);
  if (grows == (prot::kGrowsDown | prot::kGrowsUp)) return fail(Errno::kEINVAL);
  if (!start.isAligned(kPageSize)) return fail(Errno::kEINVAL);
  if (len == 0) return ok();
  len = pageAlignUp(len);
  const VirtAddr end = start + len;
  if (end <= start) return fail(Errno::kENOMEM);
  if (protBits & ~(prot::kRead | prot::kWrite | prot::kExec | prot::kSem))
    return fail(Errno::kEINVAL);
  MmapWriteGuard guard(*this);
  if (exited_) return fail(Errno::kENOMEM);
  const std::vector<Vma*> hit = vmasIn(start, end);
  if (hit.empty()) return fail(Errno::kENOMEM);
  // PROT_GROWSDOWN wants the first VMA to be VM_GROWSDOWN, PROT_GROWSUP
  // VM_GROWSUP (none on x86): no VMA of the model grows.
  if (grows & prot::kGrowsDown) return fail(Errno::kEINVAL);
  if (hit.front()->start() > start) return fail(Errno::kENOMEM);
  if (grows & prot::kGrowsUp) return fail(Errno::kEINVAL);
  // VMA by VMA: a refusal (a hole, or bits a VMA may not have) keeps what
  // the VMAs before it were given.
  const VmFlags want = protToVmFlags(protBits);
  MmuGather tlb(*this);
  VirtAddr cursor = start;
  for (Vma* v : hit) {
    if (v->start() > cursor) return fail(Errno::kENOMEM);
    const VmFlags next = (v->flags() & ~(vm::kRead | vm::kWrite | vm::kExec)) | want;
    if (next & ~(next >> 4) & (vm::kRead | vm::kWrite | vm::kExec)) return fail(Errno::kEACCES);
    const VirtAddr pieceEnd = std::min(end, v->end());
    if (auto st = mprotectFixup(*v, cursor, pieceEnd, next, tlb); !st) return st;
    cursor = pieceEnd;
  }
  if (cursor < end) return fail(Errno::kENOMEM);
  return ok();
}

// mprotect_fixup(): [start, end) of `v` split off with the new flags, its
// entries rewritten; flags that do not change split nothing.
Status Mm::mprotectFixup(Vma& v, VirtAddr start, VirtAddr end, VmFlags next, MmuGather& tlb) {
  if (next == v.flags()) return ok();
  // A private mapping writable for the first time is charged now, and
  // uncharged if the split fails.
  uint64_t charged = 0;
  if ((next & vm::kWrite) &&
      !(v.flags() & (vm::kAccount | vm::kWrite | vm::kHugetlb | vm::kShared | vm::kNoReserve))) {
    if (auto st = charge((end - start) >> kPageShift); !st) return st;
    charged = (end - start) >> kPageShift;
    next |= vm::kAccount;
  }
  auto piece = modifyFlags(start, end, next);
  if (!piece) {
    if (charged != 0) uncharge(charged);
    return fail(piece.error());
  }
  // vma_set_page_prot(): new protection, the driver's cache mode kept.
  Vma& p = **piece;
  const uint64_t protPte = vmGetPageProt(next) | (p.pageProt() & (pte::kPcd | pte::kPwt));
  p.setPageProt(protPte);
  pageTable_.changeProtection(start, end, protPte, tlb);
  return ok();
}

// vma_modify_flags(): [start, end), which lies in one VMA, split off and
// given `flags` (vm_flags_reset, under the VMA's write lock). Returns the
// VMA that covers exactly that range now.
Result<Vma*> Mm::modifyFlags(VirtAddr start, VirtAddr end, VmFlags flags) {
  if (auto st = splitAround(start, end, false); !st) return fail(st.error());
  Vma* piece = findVma(start);
  VFIOMM_ASSERT(piece != nullptr && piece->start() == start && piece->end() == end);
  vmaStartWrite(*piece);
  piece->initFlags(flags);
  return piece;
}

namespace {

// madvise_behavior_valid() of a kernel with THP and KSM, as the model's are.
bool madviseBehaviorValid(int advice) {
  switch (advice) {
    case madv::kNormal:
    case madv::kRandom:
    case madv::kSequential:
    case madv::kWillNeed:
    case madv::kDontNeed:
    case madv::kDontNeedLocked:
    case madv::kFree:
    case madv::kCold:
    case madv::kPageout:
    case madv::kPopulateRead:
    case madv::kPopulateWrite:
    case madv::kRemove:
    case madv::kDontFork:
    case madv::kDoFork:
    case madv::kDontDump:
    case madv::kDoDump:
    case madv::kWipeOnFork:
    case madv::kKeepOnFork:
    case madv::kMergeable:
    case madv::kUnmergeable:
    case madv::kHugepage:
    case madv::kNoHugepage:
    case madv::kCollapse: return true;
    default: return false;
  }
}

// vma_ksm_compatible(): KSM merges anonymous pages of private mappings.
bool ksmCompatible(VmFlags f) {
  return !(f & (vm::kShared | vm::kMayShare | vm::kPfnmap | vm::kIo | vm::kDontExpand |
                vm::kHugetlb | vm::kMixedmap));
}

// madvise_need_mmap_write(): advice that changes no VMA (it zaps, punches
// or populates what a fault could race with anyway) runs under the read
// lock; everything else, listed or not, under the write lock.
bool madviseNeedMmapWrite(int advice) {
  switch (advice) {
    case madv::kRemove:
    case madv::kWillNeed:
    case madv::kDontNeed:
    case madv::kDontNeedLocked:
    case madv::kCold:
    case madv::kPageout:
    case madv::kFree:
    case madv::kPopulateRead:
    case madv::kPopulateWrite:
    case madv::kCollapse: return false;
    default: return true;
  }
}

}  // namespace

Status Mm::madvise(VirtAddr start, uint64_t lenIn, int advice) {
  // do_madvise()'s checks, in its order: the advice before the range.
  if (!madviseBehaviorValid(advice)) return fail(Errno::kEINVAL);
  if (!start.isAligned(kPageSize)) return fail(Errno::kEINVAL);
  const uint64_t len = pageAlignUp(lenIn);
  if (lenIn != 0 && len == 0) return fail(Errno::kEINVAL);  // rounded up from a small negative
  if (start.value() + len < start.value()) return fail(Errno::kEINVAL);
  if (len == 0) return ok();
  const VirtAddr end = start + len;
  if (auto done = madviseUnderVmaLock(start, end, advice)) return *done;
  if (!madviseNeedMmapWrite(advice)) {
    ReadGuard guard(mmapLock_);
    if (exited_) return fail(Errno::kENOMEM);
    const MadviseWalk walk = madviseWalkVmas(start, end);
    for (const MadviseWalk::Piece& p : walk.pieces)
      if (auto st = madviseVmaRead(*p.vma, p.start, p.end, advice); !st) return st;
    return walk.hole ? fail(Errno::kENOMEM) : ok();
  }
  MmapWriteGuard guard(*this);
  if (exited_) return fail(Errno::kENOMEM);
  const MadviseWalk walk = madviseWalkVmas(start, end);
  for (const MadviseWalk::Piece& p : walk.pieces)
    if (auto st = madviseVmaBehavior(*p.vma, p.start, p.end, advice); !st) return st;
  return walk.hole ? fail(Errno::kENOMEM) : ok();
}

// try_vma_read_lock() (≈6.17): MADV_DONTNEED and MADV_FREE of a range
// within one VMA take only that VMA's read lock; nullopt when the advice
// needs mmap_lock after all (another advice, no VMA lockable at `start`,
// or a range that leaves it).
std::optional<Status> Mm::madviseUnderVmaLock(VirtAddr start, VirtAddr end, int advice) {
  if (!profile_.madviseVmaReadLock || !profile_.perVmaLock) return std::nullopt;
  if (advice != madv::kDontNeed && advice != madv::kDontNeedLocked && advice != madv::kFree)
    return std::nullopt;
  Vma* v = lockVmaUnderRcu(start);
  if (v == nullptr) return std::nullopt;
  std::optional<Status> done;
  if (end <= v->end()) done = madviseDontneedFree(*v, start, end, advice);
  v->endRead();
  return done;
}

// madvise_walk_vmas(): VMA by VMA, so a refusal leaves the VMAs before it
// advised; a hole is -ENOMEM once the rest is done.
Mm::MadviseWalk Mm::madviseWalkVmas(VirtAddr start, VirtAddr end) {
  MadviseWalk walk;
  VirtAddr cursor = start;
  for (Vma* v : vmasIn(start, end)) {
    walk.hole |= v->start() > cursor;
    const VirtAddr s = std::max(start, v->start());
    cursor = std::min(end, v->end());
    walk.pieces.push_back({v, s, cursor});
  }
  walk.hole |= cursor < end;
  return walk;
}

// The advice of madvise_vma_behavior() that changes no VMA.
Status Mm::madviseVmaRead(Vma& v, VirtAddr start, VirtAddr end, int advice) {
  const VmFlags f = v.flags();
  switch (advice) {
    case madv::kRemove: return madviseRemove(v, start, end);
    case madv::kWillNeed: return ok();
    case madv::kCold:
    case madv::kPageout:
      // can_madv_lru_vma()
      if (f & (vm::kLocked | vm::kPfnmap | vm::kHugetlb)) return fail(Errno::kEINVAL);
      return ok();
    case madv::kDontNeed:
    case madv::kDontNeedLocked:
    case madv::kFree: return madviseDontneedFree(v, start, end, advice);
    case madv::kPopulateRead:
    case madv::kPopulateWrite:
      if (f & vm::kPfnmap) return fail(Errno::kEINVAL);
      return ok();
    case madv::kCollapse:
      // thp_vma_allowable_order() refuses VM_NO_KHUGEPAGED; the model has
      // no anonymous THP to collapse either.
      return fail(Errno::kEINVAL);
    default: return fail(Errno::kEINVAL);
  }
}

// The advice of madvise_vma_behavior() that changes the VMA's flags, for
// [start, end) of `v`.
Status Mm::madviseVmaBehavior(Vma& v, VirtAddr start, VirtAddr end, int advice) {
  const VmFlags f = v.flags();
  VmFlags next = f;
  switch (advice) {
    case madv::kNormal: next &= ~(vm::kRandRead | vm::kSeqRead); break;
    case madv::kSequential: next = (next & ~vm::kRandRead) | vm::kSeqRead; break;
    case madv::kRandom: next = (next & ~vm::kSeqRead) | vm::kRandRead; break;
    case madv::kDontFork: next |= vm::kDontCopy; break;
    case madv::kDoFork:
      if (f & vm::kIo) return fail(Errno::kEINVAL);
      next &= ~vm::kDontCopy;
      break;
    case madv::kWipeOnFork:
      if (v.file() != nullptr || (f & vm::kShared)) return fail(Errno::kEINVAL);
      next |= vm::kWipeOnFork;
      break;
    case madv::kKeepOnFork: next &= ~vm::kWipeOnFork; break;
    case madv::kDontDump: next |= vm::kDontDump; break;
    case madv::kDoDump:
      if (!(f & vm::kHugetlb) && (f & vm::kSpecial)) return fail(Errno::kEINVAL);
      next &= ~vm::kDontDump;
      break;
    case madv::kMergeable:
      if (ksmCompatible(f)) next |= vm::kMergeable;
      break;
    case madv::kUnmergeable: next &= ~vm::kMergeable; break;
    case madv::kHugepage: next = (next & ~vm::kNoHugepage) | vm::kHugepage; break;
    case madv::kNoHugepage: next = (next & ~vm::kHugepage) | vm::kNoHugepage; break;
    default: return fail(Errno::kEINVAL);
  }
  // madvise_update_vma(): flags that do not change split nothing.
  if (next == f) return ok();
  if (auto piece = modifyFlags(start, end, next); !piece)
    return fail(piece.error() == Errno::kENOMEM ? Errno::kEAGAIN : piece.error());
  return ok();
}

// madvise_dontneed_free(), under mmap_lock or the VMA's own read lock.
Status Mm::madviseDontneedFree(const Vma& v, VirtAddr start, VirtAddr end, int advice) {
  const VmFlags f = v.flags();
  // madvise_dontneed_free_valid_vma(); MADV_FREE only for anonymous memory.
  if ((f & vm::kPfnmap) || (advice != madv::kDontNeedLocked && (f & vm::kLocked)))
    return fail(Errno::kEINVAL);
  if (advice == madv::kFree && (v.file() != nullptr || (f & vm::kShared)))
    return fail(Errno::kEINVAL);
  zapPageRangeSingle(start, end);
  // MADV_DONTNEED frees private anonymous pages (a shared mapping's stay
  // in shmem); MADV_FREE leaves them to reclaim, which spares a pinned
  // page, so a later pin still finds it.
  if (advice != madv::kFree && v.file() == nullptr && !(f & vm::kShared))
    forgetAnonPages(start, end);
  return ok();
}

// madvise_remove(): punch the range's hole in the file behind it.
Status Mm::madviseRemove(const Vma& v, VirtAddr start, VirtAddr end) {
  const VmFlags f = v.flags();
  if (f & vm::kLocked) return fail(Errno::kEINVAL);
  // Linux backs a shared anonymous mapping with a shmem file
  // (shmem_zero_setup()); the model gives it none.
  const bool sharedAnon = v.file() == nullptr && (f & vm::kShared);
  if (v.file() == nullptr && !sharedAnon) return fail(Errno::kEINVAL);
  const VmFlags writable = profile_.madviseRemoveMaywrite ? vm::kMayWrite : vm::kWrite;
  if ((f & (vm::kShared | writable)) != (vm::kShared | writable)) return fail(Errno::kEACCES);
  // shmem_fallocate(): the hole's pages leave shmem. The model's CPU maps
  // no anonymous page, so unmap_mapping_range() has nothing to zap.
  if (sharedAnon) {
    forgetAnonPages(start, end);
    return ok();
  }
  const uint64_t offset = (start - v.start()) + v.pgoff().toBytes();
  return v.file()->punchHole(offset, end - start);
}

Status Mm::mlock(VirtAddr start, uint64_t len, const MemlockRights& current) {
  if (!current.canMlock()) return fail(Errno::kEPERM);
  MmapWriteGuard guard(*this);
  if (exited_) return fail(Errno::kENOMEM);
  VirtAddr cursor = start.alignDown(kPageSize);
  const VirtAddr end = VirtAddr(pageAlignUp((start + len).value()));
  // Pages already locked in the range need no new room
  // (count_mm_mlocked_page_nr()).
  const uint64_t pages = (end - cursor) >> kPageShift;
  if (!current.allows(lockedVm(), pages) &&
      !current.allows(lockedVm(), pages - lockedPagesIn(cursor, end)))
    return fail(Errno::kENOMEM);
  // apply_vma_lock_flags(): VMA by VMA; a hole stops the walk with -ENOMEM,
  // keeping what was locked before it.
  for (Vma* v : vmasIn(cursor, end)) {
    if (v->start() > cursor) return fail(Errno::kENOMEM);
    const VirtAddr pieceEnd = std::min(end, v->end());
    if (auto st = mlockFixup(*v, std::max(cursor, v->start()), pieceEnd); !st) return st;
    cursor = pieceEnd;
  }
  if (cursor < end) return fail(Errno::kENOMEM);
  return ok();
}

// mlock_fixup(): VM_LOCKED on [start, end) of `v`, split off; the pages
// newly locked count in locked_vm. VM_SPECIAL and hugetlb VMAs are left
// as they are: nothing populated, nothing counted.
Status Mm::mlockFixup(Vma& v, VirtAddr start, VirtAddr end) {
  const VmFlags f = v.flags();
  if ((f & vm::kLocked) || (f & (vm::kSpecial | vm::kHugetlb))) return ok();
  if (auto piece = modifyFlags(start, end, f | vm::kLocked); !piece) return fail(piece.error());
  addLockedVm((end - start) >> kPageShift);
  return ok();
}

uint64_t Mm::lockedPagesIn(VirtAddr start, VirtAddr end) {
  uint64_t pages = 0;
  for (Vma* v : vmasIn(start, end)) {
    if (!(v->flags() & vm::kLocked)) continue;
    pages += (std::min(end, v->end()) - std::max(start, v->start())) >> kPageShift;
  }
  return pages;
}

Result<std::vector<uint8_t>> Mm::mincore(VirtAddr start, uint64_t len) {
  if (!start.isAligned(kPageSize)) return fail(Errno::kEINVAL);
  ReadGuard guard(mmapLock_);
  if (exited_) return fail(Errno::kENOMEM);
  const VirtAddr end = start + pageAlignUp(len);
  VirtAddr cursor = start;
  for (Vma* v : vmasIn(start, end)) {
    if (v->start() > cursor) return fail(Errno::kENOMEM);
    cursor = v->end();
  }
  if (cursor < end) return fail(Errno::kENOMEM);
  // No page cache behind a pfnmap (and anonymous memory is never touched
  // here): every byte reads 0.
  return std::vector<uint8_t>(pageAlignUp(len) >> kPageShift, 0);
}

// ---------------------------------------------------------------------------
// mremap

Result<VirtAddr> Mm::mremap(VirtAddr oldAddr, uint64_t oldLen, uint64_t newLen, int flags,
                            VirtAddr newAddr, const MemlockRights& current) {
  if (flags & ~(mremap::kMayMove | mremap::kFixed | mremap::kDontUnmap))
    return fail(Errno::kEINVAL);
  if ((flags & mremap::kFixed) && !(flags & mremap::kMayMove)) return fail(Errno::kEINVAL);
  if ((flags & mremap::kDontUnmap) && (!(flags & mremap::kMayMove) || oldLen != newLen))
    return fail(Errno::kEINVAL);
  if (!oldAddr.isAligned(kPageSize)) return fail(Errno::kEINVAL);
  oldLen = pageAlignUp(oldLen);
  newLen = pageAlignUp(newLen);
  if (newLen == 0) return fail(Errno::kEINVAL);

  MmapWriteGuard guard(*this);
  if (exited_) return fail(Errno::kENOMEM);
  if (findVma(oldAddr) == nullptr) return fail(Errno::kEFAULT);
  Vma* vma = nullptr;
  if (flags & (mremap::kFixed | mremap::kDontUnmap)) {
    // mremap_to(): the destination is checked and, with MREMAP_FIXED,
    // unmapped, and the source's tail unmapped, before the source VMA is
    // checked: a refused move has already cleared the destination.
    if (!newAddr.isAligned(kPageSize) || newLen > kTaskSize || newAddr.value() > kTaskSize - newLen)
      return fail(Errno::kEINVAL);
    if (newAddr < oldAddr + oldLen && oldAddr < newAddr + newLen) return fail(Errno::kEINVAL);
    if (flags & mremap::kFixed) {
      if (auto st = doMunmap(newAddr, newLen); !st) return fail(st.error());
    }
    if (oldLen > newLen) {
      if (auto st = doMunmap(oldAddr + newLen, oldLen - newLen); !st) return fail(st.error());
      oldLen = newLen;
    }
    auto resizable = vmaToResize(oldAddr, oldLen, newLen, flags, current);
    if (!resizable) return fail(resizable.error());
    vma = *resizable;
    if (!(flags & mremap::kFixed)) {
      // MREMAP_DONTUNMAP alone: the new address is only a hint.
      auto area =
          getUnmappedArea(vma->file(), newAddr, newLen, vma->linearPageIndex(oldAddr).value(), 0);
      if (!area) return area;
      newAddr = *area;
    }
  } else {
    // A shrink is always allowed: it only unmaps the tail, wherever it is.
    if (newLen <= oldLen) {
      if (newLen < oldLen) {
        if (auto st = doMunmap(oldAddr + newLen, oldLen - newLen); !st) return fail(st.error());
      }
      return oldAddr;
    }
    auto resizable = vmaToResize(oldAddr, oldLen, newLen, flags, current);
    if (!resizable) return fail(resizable.error());
    vma = *resizable;
    if (rangeIsFree((oldAddr + oldLen).value(), (oldAddr + newLen).value()) &&
        oldAddr + oldLen == vma->end()) {
      // Grow in place (anonymous memory only: pfnmaps were refused above).
      if (vma->flags() & vm::kAccount) {
        if (auto st = charge((newLen - oldLen) >> kPageShift); !st) return fail(st.error());
      }
      if (vma->flags() & vm::kLocked) addLockedVm((newLen - oldLen) >> kPageShift);
      auto owned = detachVma(*vma);
      owned->setRange(owned->start(), oldAddr + newLen, owned->pgoff());
      insertVma(std::move(owned));
      return oldAddr;
    }
    if (!(flags & mremap::kMayMove)) return fail(Errno::kENOMEM);
    const uint64_t pgoff = vma->linearPageIndex(oldAddr).value();
    auto area = getUnmappedArea(vma->file(), VirtAddr(0), newLen, pgoff, 0);
    if (!area) return area;
    newAddr = *area;
  }

  // move_vma(): copy_vma (->open on the destination, i_mmap link), then
  // move_page_tables, then unmap the source.
  if (vma->ops() != nullptr) {
    if (auto st = vma->ops()->mremap(*vma); !st) return fail(st.error());
  }
  // move_vma(): the destination is charged in full; unmapping the source
  // returns the source's pages.
  if (vma->flags() & vm::kAccount) {
    if (auto st = charge(newLen >> kPageShift); !st) return fail(st.error());
  }
  const uint64_t moved = std::min(oldLen, newLen);
  std::unique_ptr<Vma> dest = vma->dup(*this);
  dest->setRange(newAddr, newAddr + newLen, vma->linearPageIndex(oldAddr));
  openVma(*dest);
  Vma& d = *dest;
  insertVma(std::move(dest));
  linkFile(d, nullptr);
  {
    AddressSpace* mapping = mappingOf(*vma);
    MmuGather tlb(*this);
    if (mapping != nullptr) {
      WriteGuard i(mapping->iMmapRwsem());  // take_rmap_locks()
      pageTable_.moveRange(oldAddr, newAddr, moved, tlb);
    } else {
      pageTable_.moveRange(oldAddr, newAddr, moved, tlb);
    }
  }
  if (vma->file() == nullptr && systemRam_ != nullptr)
    systemRam_->moveFrames(id_, oldAddr, newAddr, moved);
  // untrack_pfn_moved(): the reservation now belongs to the destination,
  // so the source's unmap must not free it.
  if (vma->flags() & vm::kPfnmap) vma->flagsClearUnchecked(vm::kPat);
  if (flags & mremap::kDontUnmap) {
    // The source is kept, unlocked; locked_vm's count moved with the
    // pages (move_vma() leaves it alone).
    vmaStartWrite(*vma);
    vma->initFlags(vma->flags() & ~vm::kLocked);
    return newAddr;
  }
  const bool locked = (vma->flags() & vm::kLocked) != 0;
  // The source's unmap gives back its locked pages; the destination's
  // are counted after it.
  if (auto st = doMunmap(oldAddr, oldLen); !st) return fail(st.error());
  if (locked) addLockedVm(newLen >> kPageShift);
  return newAddr;
}

Result<Vma*> Mm::vmaToResize(VirtAddr addr, uint64_t oldLen, uint64_t newLen, int flags,
                             const MemlockRights& current) {
  Vma* vma = findVma(addr);
  if (vma == nullptr) return fail(Errno::kEFAULT);
  if ((flags & mremap::kDontUnmap) && (vma->flags() & (vm::kDontExpand | vm::kPfnmap)))
    return fail(Errno::kEINVAL);
  if (addr + oldLen > vma->end()) return fail(Errno::kEFAULT);  // across VMAs
  if (newLen > oldLen && (vma->flags() & (vm::kDontExpand | vm::kPfnmap)))
    return fail(Errno::kEFAULT);
  // mlock_future_ok(): a locked mapping grows within RLIMIT_MEMLOCK.
  if (newLen > oldLen && (vma->flags() & vm::kLocked) &&
      !current.allows(lockedVm(), (newLen - oldLen) >> kPageShift))
    return fail(Errno::kEAGAIN);
  return vma;
}

// ---------------------------------------------------------------------------
// fork and exit

Result<std::shared_ptr<Mm>> Mm::fork() {
  std::shared_ptr<Mm> child(new Mm(machine_, *this));
  MmapWriteGuard parent(*this);
  if (exited_) return fail(Errno::kENOMEM);
  child->mmapLock_.downWriteNested(1);  // mmap_write_lock_nested(SINGLE_DEPTH_NESTING)
  Status status = ok();
  for (auto& [start, vma] : vmas_) {
    if (vma->flags() & vm::kDontCopy) continue;
    // dup_mmap(): an accounted VMA is charged again for the child's copy.
    if (vma->flags() & vm::kAccount) {
      if (auto st = charge(vma->pages()); !st) {
        status = st;
        break;
      }
    }
    vmaStartWrite(*vma);
    std::unique_ptr<Vma> copy = vma->dup(*child);
    Vma& c = *copy;
    c.initFlags(c.flags() & ~vm::kLocked);  // dup_mmap(): locks are not inherited
    const bool hasFile = c.file() != nullptr;
    // fork_clears_vm_pat (mm-pfnmap.md §7.1, §11): the child's VM_PAT is
    // its own reservation's, made by the copy below, not the parent's.
    const bool pat = (c.flags() & vm::kPat) != 0;
    if (pat && profile_.forkClearsVmPat) c.flagsClear(vm::kPat);
    // fork_open_before_copy (mm-pfnmap.md §11): since 35e351780fa9 the
    // child's ->open runs before it is linked and before the copy.
    if (profile_.forkOpenBeforeCopy) openVma(c);
    child->insertVma(std::move(copy));
    // Linked before the copy: a zap that follows the copy finds the child
    // after the parent (the seeded bug forkCopiesBeforeLink links it after).
    const bool linkAfterCopy = profile_.forkCopiesBeforeLink;
    if (hasFile && !linkAfterCopy) [[likely]]
      child->linkFile(c, vma.get());
    // vma_needs_copy() is always true for VM_PFNMAP; WIPEONFORK skips it.
    if (!(c.flags() & vm::kWipeOnFork)) {
      // copy_page_range(): track_pfn_copy() first.
      status = trackPfnCopy(*vma);
      if (status &&
          pageTable_.copyRange(child->pageTable_, c.start(), c.end()) != PageTable::WalkStatus::kOk)
        status = fail(Errno::kENOMEM);
      else if (status && pat && profile_.forkClearsVmPat)
        c.flagsSet(vm::kPat);  // track_pfn_copy() reserved the child's range
    }
    if (hasFile && linkAfterCopy) [[unlikely]]
      child->linkFile(c, vma.get());
    if (!profile_.forkOpenBeforeCopy) openVma(c);
    if (!status) break;
  }
  child->mmapWriteUnlock();
  child->notePgtablesBytes();
  if (!status) return fail(status.error());
  return child;
}

void Mm::exitMmap() {
  MmapWriteGuard guard(*this);
  if (exited_) return;
  exited_ = true;
  std::vector<std::unique_ptr<Vma>> gone;
  while (!vmas_.empty()) {
    Vma& v = *vmas_.begin()->second;
    vmaStartWrite(v);
    gone.push_back(detachVma(v));
  }
  {
    MmuGather tlb(*this);
    unmapVmas(gone, tlb);
    for (auto& v : gone) unlinkFile(*v);
    pageTable_.freePgtables(VirtAddr(0), VirtAddr(kUserTop), VirtAddr(0), VirtAddr(kUserTop), tlb);
  }
  for (auto& v : gone) removeVma(std::move(v));
}

}  // namespace vfiomm
