// Mm models struct mm_struct: the VMA tree under mmap_lock, the page table,
// the CPUs that have run it (mm_cpumask), and the memory syscalls with the
// kernel's checks, errno values and VMA split rules (mm-pfnmap.md §3, §11,
// §12). The syscalls take mmap_lock for write, but for madvise advice that
// changes no VMA, which takes it for read.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/addr.h"
#include "base/result.h"
#include "hw/mmu_context.h"
#include "mm/memlock_rights.h"
#include "mm/mm_profile.h"
#include "mm/mmu_gather.h"
#include "mm/page_table.h"
#include "mm/vma.h"
#include "sync/rw_semaphore.h"
#include "sync/spin_lock.h"

namespace vfiomm {

class AddressSpace;
class File;
class Machine;
class OomKill;
class PatMemtype;
class SystemRam;
class VmCommit;

inline const LockClass kMmapLockClass{"&mm->mmap_lock"};
// The VMA tree's own lock: stands for the maple tree's RCU-safe lookups.
inline const LockClass kMmVmaTreeLockClass{"&mm->mm_mt"};

class Mm final : public std::enable_shared_from_this<Mm>, public MmuContext {
 public:
  Mm(Machine& machine, MmProfile profile);
  ~Mm();  // exit_mmap() when the last user went without calling exitMmap()
  Mm(const Mm&) = delete;
  Mm& operator=(const Mm&) = delete;

  uint64_t id() const { return id_; }
  // --- the MMU's view (MmuContext): the id as PCID, the lockless walk -------
  uint64_t asid() const override { return id_; }
  Leaf walk(VirtAddr va) override;
  Machine& machine() { return machine_; }
  const MmProfile& profile() const { return profile_; }
  PageTable& pageTable() { return pageTable_; }
  RwSemaphore& mmapLock() RETURN_CAPABILITY(mmapLock_) { return mmapLock_; }

  // mmap_write_lock()/mmap_write_unlock(): the unlock also ends every
  // per-VMA write lock taken meanwhile (vma_end_write_all).
  void mmapWriteLock() ACQUIRE(mmapLock_);
  void mmapWriteUnlock() RELEASE(mmapLock_);

  // --- syscalls ---------------------------------------------------------------
  // MAP_LOCKED: -EPERM without the right to lock, -EAGAIN past the limit
  // (counted with type1's pins), even for a VMA the driver will keep from
  // being locked (VM_SPECIAL). Any other locked mapping counts in
  // locked_vm; the model does not populate it.
  Result<VirtAddr> mmap(VirtAddr addr, uint64_t len, int prot, int flags,
                        std::shared_ptr<File> file, uint64_t offset,
                        const MemlockRights& current = {}) EXCLUDES(mmapLock_);
  Status munmap(VirtAddr addr, uint64_t len) EXCLUDES(mmapLock_);
  Status mprotect(VirtAddr addr, uint64_t len, int prot) EXCLUDES(mmapLock_);
  Result<VirtAddr> mremap(VirtAddr oldAddr, uint64_t oldLen, uint64_t newLen, int flags,
                          VirtAddr newAddr, const MemlockRights& current = {}) EXCLUDES(mmapLock_);
  Status madvise(VirtAddr addr, uint64_t len, int advice) EXCLUDES(mmapLock_);
  // do_mlock(): the limit as MAP_LOCKED's, -ENOMEM past it.
  Status mlock(VirtAddr addr, uint64_t len, const MemlockRights& current = {}) EXCLUDES(mmapLock_);
  Result<std::vector<uint8_t>> mincore(VirtAddr addr, uint64_t len) EXCLUDES(mmapLock_);
  // dup_mmap(): a child mm with copies of every VMA but VM_DONTCOPY ones.
  // Shared-owned from birth: its VMAs are in i_mmap, where a refill may pin
  // it (weak_from_this) before fork() even returns.
  Result<std::shared_ptr<Mm>> fork() EXCLUDES(mmapLock_);
  // exit_mmap(): unmap everything, free every table.
  void exitMmap() EXCLUDES(mmapLock_);

  // --- lookups ------------------------------------------------------------------
  // The VMA containing `addr`, or nullptr.
  Vma* findVma(VirtAddr addr) REQUIRES_SHARED(mmapLock_);
  // lock_vma_under_rcu(): the VMA containing `addr` read-locked with its
  // per-VMA lock, without the mmap lock; nullptr when that is not possible.
  Vma* lockVmaUnderRcu(VirtAddr addr);
  // vma_start_write(): exclude per-VMA-lock readers until mmapWriteUnlock().
  void vmaStartWrite(Vma& vma) REQUIRES(mmapLock_);
  bool vmaIsWriteLocked(const Vma& vma) const;

  // The VMAs whose file maps `mapping`, in address order.
  std::vector<Vma*> vmasMapping(const AddressSpace& mapping) REQUIRES_SHARED(mmapLock_);
  bool exited() REQUIRES_SHARED(mmapLock_) { return exited_; }

  // A copy of every VMA's fields, in address order (tests, monitors).
  std::vector<VmaSnapshot> vmaSnapshot() EXCLUDES(mmapLock_);
  // Visit every VMA in address order under the mmap lock held for read, as
  // /proc/<pid>/maps does (m_start).
  void forEachVma(const std::function<void(const Vma&)>& fn) EXCLUDES(mmapLock_);
  size_t mapCount() const { return mapCount_.load(std::memory_order_relaxed); }  // map_count

  // --- CPUs and TLBs ----------------------------------------------------------------
  // seq_cst on both sides: "join the mask, then walk" against "clear the
  // entry, then read the mask" is a store-buffer pattern (ZAP-04).
  void noteCpu(unsigned cpu) override { cpumask_.fetch_or(1ULL << cpu, std::memory_order_seq_cst); }
  uint64_t cpumask() const { return cpumask_.load(std::memory_order_seq_cst); }
  // flush_tlb_mm_range() on every CPU of this mm.
  void flushTlbRange(VirtAddr start, VirtAddr end, unsigned strideShift, bool freedTables);
  TlbFlushFn tlbFlusher();
  // mm->tlb_flush_pending: the gathers of this mm between their start and
  // their finish (MmuGather). Nested: more than one, so a gather may have
  // found entries another cleared and has not flushed yet.
  void incTlbFlushPending() { tlbFlushPending_.fetch_add(1, std::memory_order_seq_cst); }
  void decTlbFlushPending() { tlbFlushPending_.fetch_sub(1, std::memory_order_seq_cst); }
  bool tlbFlushNested() const { return tlbFlushPending_.load(std::memory_order_seq_cst) > 1; }

  // --- settings and accounting ----------------------------------------------------------
  // The system's commit accounting (vfio-uapi.md §10); none: nothing is
  // charged (mm unit tests). Set before the first syscall.
  void setVmCommit(VmCommit* commit) { vmCommit_ = commit; }
  // The system's x86 PAT memtype tracking; none: G1's fills reserve
  // nothing (mm unit tests). Set before the first syscall.
  void setPatMemtype(PatMemtype* memtype) { patMemtype_ = memtype; }
  PatMemtype* patMemtype() const { return patMemtype_; }
  // The system's OOM killer, which a user fault's VM_FAULT_OOM reaches;
  // none: such a fault is retried without a word (mm unit tests).
  void setOomKill(OomKill* oom) { oomKill_ = oom; }
  OomKill* oomKill() const { return oomKill_; }
  // The system's RAM, whose frames back what a pin takes of anonymous
  // memory; none: the mm frees no frame (mm unit tests).
  void setSystemRam(SystemRam* ram) { systemRam_ = ram; }
  // mm->owner: the process whose pid and comm the overcommit warning names.
  void setOwner(int pid, std::string comm);
  void setThpEnabled(ThpEnabled t) { thpEnabled_ = t; }
  ThpEnabled thpEnabled() const { return thpEnabled_; }
  void setThpDisabled(bool off) { thpDisabled_ = off; }  // prctl(PR_SET_THP_DISABLE)
  bool thpDisabled() const { return thpDisabled_; }
  uint64_t pgtablesBytesPeak() const { return pgtablesPeak_.load(std::memory_order_relaxed); }
  void notePgtablesBytes();
  // mm->locked_vm in pages: VM_LOCKED memory (mlock(), MAP_LOCKED) and
  // what long-term pins charged against RLIMIT_MEMLOCK (type1's MAP_DMA),
  // which may count the same pages twice, as in Linux.
  uint64_t lockedVm() const { return lockedVm_.load(std::memory_order_relaxed); }
  void addLockedVm(uint64_t pages) { lockedVm_.fetch_add(pages, std::memory_order_relaxed); }
  void subLockedVm(uint64_t pages) { lockedVm_.fetch_sub(pages, std::memory_order_relaxed); }
  // mm->pinned_vm in pages (VmPin): iommufd's long-term pins of this mm's
  // memory, counted whatever they are charged to.
  uint64_t pinnedVm() const { return pinnedVm_.load(std::memory_order_relaxed); }
  void addPinnedVm(uint64_t pages) { pinnedVm_.fetch_add(pages, std::memory_order_relaxed); }
  void subPinnedVm(uint64_t pages) { pinnedVm_.fetch_sub(pages, std::memory_order_relaxed); }
  // The mm_lock_seq the per-VMA locks compare against.
  int64_t mmLockSeq() const { return mmLockSeq_.load(std::memory_order_acquire); }

 private:
  // Mm::fork() builds the child with the parent's settings.
  Mm(Machine& machine, const Mm& parent);

  using VmaMap = std::map<uint64_t, std::unique_ptr<Vma>>;

  Result<VirtAddr> getUnmappedArea(File* file, VirtAddr addr, uint64_t len, uint64_t pgoff,
                                   int flags) REQUIRES(mmapLock_);
  Result<VirtAddr> unmappedAreaTopDown(uint64_t len, uint64_t align, uint64_t alignOffset)
      REQUIRES(mmapLock_);
  // arch_get_unmapped_area_topdown(): `hint` (page aligned up) if `len`
  // bytes are free there, else the highest hole that fits.
  Result<VirtAddr> searchArea(VirtAddr hint, uint64_t len) REQUIRES(mmapLock_);
  bool rangeIsFree(uint64_t start, uint64_t end) REQUIRES(mmapLock_);
  Result<VirtAddr> mmapRegion(std::shared_ptr<File> file, VirtAddr addr, uint64_t len,
                              VmFlags flags, PgOff pgoff) REQUIRES(mmapLock_);
  Status doMunmap(VirtAddr start, uint64_t len) REQUIRES(mmapLock_);
  // Pages of VM_LOCKED VMAs in [start, end).
  uint64_t lockedPagesIn(VirtAddr start, VirtAddr end) REQUIRES(mmapLock_);
  // vma_to_resize(): the VMA at `addr` if [addr, addr + oldLen) lies in it
  // and may become `newLen` bytes (-EFAULT, or -EINVAL for DONTUNMAP).
  Result<Vma*> vmaToResize(VirtAddr addr, uint64_t oldLen, uint64_t newLen, int flags,
                           const MemlockRights& current) REQUIRES(mmapLock_);
  // __split_vma(): split `vma` at `addr`; the new structure takes the lower
  // part when `newBelow`. Returns the new VMA.
  Result<Vma*> splitVma(Vma& vma, VirtAddr addr, bool newBelow) REQUIRES(mmapLock_);
  void insertVma(std::unique_ptr<Vma> vma) REQUIRES(mmapLock_);
  std::unique_ptr<Vma> detachVma(Vma& vma) REQUIRES(mmapLock_);
  void linkFile(Vma& vma, Vma* after) REQUIRES(mmapLock_);
  void unlinkFile(Vma& vma) REQUIRES(mmapLock_);
  void removeVma(std::unique_ptr<Vma> vma) REQUIRES(mmapLock_);
  // unmap_vmas(): every VMA of `gone` untracked and zapped into `tlb`.
  void unmapVmas(const std::vector<std::unique_ptr<Vma>>& gone, MmuGather& tlb) REQUIRES(mmapLock_);
  // zap_page_range_single(): the entries of [start, end) zapped, the
  // tables kept. MADV_DONTNEED calls it under mmap_lock's read side or
  // only the VMA's read lock, racing with faults as in Linux.
  void zapPageRangeSingle(VirtAddr start, VirtAddr end);
  // The anonymous pages of [start, end) are freed: a later pin of one of
  // them gets a fresh frame.
  void forgetAnonPages(VirtAddr start, VirtAddr end);
  std::vector<Vma*> vmasIn(VirtAddr start, VirtAddr end) REQUIRES_SHARED(mmapLock_);
  Status splitAround(VirtAddr start, VirtAddr end, bool forMunmap) REQUIRES(mmapLock_);
  Result<Vma*> modifyFlags(VirtAddr start, VirtAddr end, VmFlags flags) REQUIRES(mmapLock_);
  struct MadviseWalk {
    struct Piece {
      Vma* vma;
      VirtAddr start, end;
    };
    std::vector<Piece> pieces;  // each VMA's part of the range
    bool hole = false;          // some of the range has no VMA
  };
  MadviseWalk madviseWalkVmas(VirtAddr start, VirtAddr end) REQUIRES_SHARED(mmapLock_);
  Status madviseVmaRead(Vma& v, VirtAddr start, VirtAddr end, int advice)
      REQUIRES_SHARED(mmapLock_);
  // Under mmap_lock or `v`'s own read lock.
  Status madviseDontneedFree(const Vma& v, VirtAddr start, VirtAddr end, int advice);
  std::optional<Status> madviseUnderVmaLock(VirtAddr start, VirtAddr end, int advice)
      EXCLUDES(mmapLock_);
  Status madviseVmaBehavior(Vma& v, VirtAddr start, VirtAddr end, int advice) REQUIRES(mmapLock_);
  Status madviseRemove(const Vma& v, VirtAddr start, VirtAddr end) REQUIRES_SHARED(mmapLock_);
  Status mlockFixup(Vma& v, VirtAddr start, VirtAddr end) REQUIRES(mmapLock_);
  Status mprotectFixup(Vma& v, VirtAddr start, VirtAddr end, VmFlags next, MmuGather& tlb)
      REQUIRES(mmapLock_);
  // security_vm_enough_memory_mm(this mm, pages), and vm_unacct_memory().
  Status charge(uint64_t pages) REQUIRES(mmapLock_);
  void uncharge(uint64_t pages);
  // VM_ACCOUNT pages of the VMAs in [start, end) (vms->nr_accounted).
  uint64_t accountedPagesIn(VirtAddr start, VirtAddr end) REQUIRES(mmapLock_);

  const uint64_t id_;
  Machine& machine_;
  const MmProfile profile_;
  RwSemaphore mmapLock_{kMmapLockClass};
  // Taken for tree changes (under mmapLock_) and RCU-style lookups.
  SpinLock vmaTreeLock_ ACQUIRED_AFTER(mmapLock_){kMmVmaTreeLockClass};
  VmaMap vmas_ GUARDED_BY(mmapLock_);
  // The files of VMAs removed under the write lock: their fput() waits for
  // the unlock, as the kernel defers __fput() to task work, so a file's
  // release (a vfio device leaving its IOAS) never runs under mmap_lock.
  std::vector<std::shared_ptr<File>> deferredFput_ GUARDED_BY(mmapLock_);
  PageTable pageTable_;
  std::atomic<uint64_t> cpumask_{0};
  std::atomic<int> tlbFlushPending_{0};
  std::atomic<size_t> mapCount_{0};
  std::atomic<int64_t> mmLockSeq_{0};
  std::atomic<uint64_t> pgtablesPeak_{0};
  std::atomic<uint64_t> lockedVm_{0};
  std::atomic<uint64_t> pinnedVm_{0};
  VmCommit* vmCommit_ = nullptr;
  PatMemtype* patMemtype_ = nullptr;
  OomKill* oomKill_ = nullptr;
  SystemRam* systemRam_ = nullptr;
  int ownerPid_ = 0;
  std::string ownerComm_;
  ThpEnabled thpEnabled_ = ThpEnabled::kAlways;
  bool thpDisabled_ = false;
  bool exited_ GUARDED_BY(mmapLock_) = false;
  // MmProfile::faultRetryReusesVma only: removed VMAs stay readable until
  // the mm goes, as SLAB_TYPESAFE_BY_RCU keeps a vm_area_struct readable
  // for a reader that found it, so the seeded bug's stale pointer reads a
  // detached VMA rather than freed memory.
  std::vector<std::unique_ptr<Vma>> retired_ GUARDED_BY(mmapLock_);
};

}  // namespace vfiomm
