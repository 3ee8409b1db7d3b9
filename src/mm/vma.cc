#include "mm/vma.h"

#include "mm/file.h"
#include "mm/mm.h"
#include "sync/lockdep.h"

namespace vfiomm {

Vma::Vma(Mm& mm, VirtAddr start, VirtAddr end, PgOff pgoff, VmFlags flags)
    : mm_(&mm), start_(start), end_(end), pgoff_(pgoff), flags_(flags) {}

std::unique_ptr<Vma> Vma::dup(Mm& mm) const {
  auto v = std::make_unique<Vma>(mm, start_, end_, pgoff_, flags());
  v->pageProt_ = pageProt_;
  v->file_ = file_;  // get_file()
  v->ops_ = ops_;
  v->privateData_ = privateData_;
  return v;
}

VmaSnapshot Vma::snapshot() const {
  return VmaSnapshot{start_, end_, pgoff_, flags(), pageProt_, this};
}

void Vma::setRange(VirtAddr start, VirtAddr end, PgOff pgoff) {
  start_ = start;
  end_ = end;
  pgoff_ = pgoff;
}

void Vma::assertWriteLocked() const {
  // vm_flags_set -> vma_start_write -> mmap_assert_write_locked: nothing
  // before 6.3, a lockdep report 6.3-6.9, a WARN in every build from 6.10-rc1.
  switch (mm_->profile().vmFlagsWriteAssert) {
    case VmFlagsWriteAssert::kNone: return;
    case VmFlagsWriteAssert::kLockdep:
      if (lockdep::enabled()) mm_->mmapLock().assertHeldWrite();
      return;
    case VmFlagsWriteAssert::kAlways: mm_->mmapLock().assertHeldWrite(); return;
  }
}

// The lock was taken by Mm::lockVmaUnderRcu() and is handed along the
// fault path: a transfer the analysis cannot follow; lockdep tracks it.
void Vma::endRead() NO_THREAD_SAFETY_ANALYSIS { vmLock_.upRead(); }

void Vma::flagsSet(VmFlags add) {
  startWrite();
  flags_.fetch_or(add, std::memory_order_relaxed);
}

void Vma::flagsClear(VmFlags remove) {
  startWrite();
  flags_.fetch_and(~remove, std::memory_order_relaxed);
}

// vm_flags_set()/vm_flags_clear() call vma_start_write(), which marks the
// VMA even under the read lock (G1's fill): per-VMA faults on it fall back
// to the mmap lock until the next mmap_write_unlock().
void Vma::startWrite() NO_THREAD_SAFETY_ANALYSIS {
  assertWriteLocked();
  if (mm_->profile().perVmaLock) mm_->vmaStartWrite(*this);
}

}  // namespace vfiomm
