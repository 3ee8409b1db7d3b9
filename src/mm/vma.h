// Vma models struct vm_area_struct. Its fields change only with the owning
// mm's mmap_lock held for write (and, since 6.4, after vma_start_write());
// faults read them under the mmap lock held for read or under the VMA's own
// per-VMA read lock. That rule spans two objects, so it is enforced by
// lockdep assertions in Mm rather than by annotations here.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "base/addr.h"
#include "mm/vm_flags.h"
#include "sync/rw_semaphore.h"

namespace vfiomm {

class File;
class Mm;
class VmOperations;

// vma->vm_lock->lock (per-VMA lock, CONFIG_PER_VMA_LOCK).
inline const LockClass kVmaLockClass{"&vma->vm_lock->lock"};

// The fields of a VMA, copied (tests, monitors, reports).
struct VmaSnapshot {
  VirtAddr start;
  VirtAddr end;
  PgOff pgoff;
  VmFlags flags = 0;
  uint64_t pageProt = 0;
  const void* identity = nullptr;  // which vm_area_struct this is
};

class Vma {
 public:
  Vma(Mm& mm, VirtAddr start, VirtAddr end, PgOff pgoff, VmFlags flags);
  Vma(const Vma&) = delete;
  Vma& operator=(const Vma&) = delete;
  // vm_area_dup(): a new structure with the same fields (and file reference).
  std::unique_ptr<Vma> dup(Mm& mm) const;

  Mm& mm() const { return *mm_; }
  VirtAddr start() const { return start_; }
  VirtAddr end() const { return end_; }
  PgOff pgoff() const { return pgoff_; }
  VmFlags flags() const { return flags_.load(std::memory_order_relaxed); }
  uint64_t pageProt() const { return pageProt_; }
  File* file() const { return file_.get(); }
  const std::shared_ptr<File>& fileRef() const { return file_; }
  const VmOperations* ops() const { return ops_; }
  void* privateData() const { return privateData_; }

  uint64_t length() const { return end_ - start_; }
  uint64_t pages() const { return length() >> kPageShift; }  // vma_pages()
  bool contains(VirtAddr a) const { return a >= start_ && a < end_; }
  // linear_page_index(vma, addr).
  PgOff linearPageIndex(VirtAddr a) const { return pgoff_ + ((a - start_) >> kPageShift); }
  // The closed page-index interval this VMA has in i_mmap.
  uint64_t pgoffLast() const { return pgoff_.value() + pages() - 1; }
  // is_cow_mapping(): private and may be written.
  bool isCowMapping() const { return (flags() & (vm::kShared | vm::kMayWrite)) == vm::kMayWrite; }
  VmaSnapshot snapshot() const;

  // --- written by mm with the mmap lock held for write, or by the driver's
  // ->mmap before the VMA is visible anywhere ---
  void setRange(VirtAddr start, VirtAddr end, PgOff pgoff);
  void setPgoff(PgOff pgoff) { pgoff_ = pgoff; }
  void setPageProt(uint64_t prot) { pageProt_ = prot; }
  void setFile(std::shared_ptr<File> file) { file_ = std::move(file); }
  void setOps(const VmOperations* ops) { ops_ = ops; }
  void setPrivateData(void* data) { privateData_ = data; }
  // vm_flags_init(): the VMA is not yet visible (->mmap).
  void initFlags(VmFlags flags) { flags_.store(flags, std::memory_order_relaxed); }
  // vm_flags_set/clear/mod(): assert the mmap lock is held for write, as the
  // kernel does per the profile's vm_flags_write_assert (mm-pfnmap.md §2),
  // and write-lock the VMA for per-VMA faults (vma_start_write).
  void flagsSet(VmFlags add);
  void flagsClear(VmFlags remove);
  // __vm_flags_mod(): no lock assertion, for the callers the kernel lets
  // change flags without the mmap write lock (untrack_pfn with
  // mm_wr_locked false).
  void flagsClearUnchecked(VmFlags remove) { flags_.fetch_and(~remove, std::memory_order_relaxed); }

  // --- per-VMA lock (vma_start_read / vma_end_read) ---
  RwSemaphore& vmLock() { return vmLock_; }
  // vma_end_read(): drop the per-VMA read lock lock_vma_under_rcu() took.
  void endRead();
  std::atomic<int64_t>& vmLockSeq() { return vmLockSeq_; }

 private:
  void assertWriteLocked() const;
  void startWrite();

  Mm* mm_;
  VirtAddr start_;
  VirtAddr end_;
  PgOff pgoff_;
  // Atomic only so that G1's (buggy) vm_flags_set under the mmap read lock
  // is a modelled bug, not undefined behaviour of the model.
  std::atomic<VmFlags> flags_;
  uint64_t pageProt_ = 0;
  std::shared_ptr<File> file_;
  const VmOperations* ops_ = nullptr;
  void* privateData_ = nullptr;
  RwSemaphore vmLock_{kVmaLockClass};
  std::atomic<int64_t> vmLockSeq_{-1};
};

}  // namespace vfiomm
