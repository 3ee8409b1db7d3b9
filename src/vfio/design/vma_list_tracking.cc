#include "vfio/design/vma_list_tracking.h"

#include <algorithm>
#include <memory>

#include "base/counter.h"
#include "mm/mm.h"
#include "mm/pfn_insert.h"
#include "mm/vma.h"
#include "sync/sched_hook.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(vmaListZapped, "vfio.vma_list.zapped", "G1 VMAs zapped from vma_list");

}  // namespace

void VmaListTracking::setupVma(Vma& vma) {
  // The list, not i_mmap, finds the VMAs, so vm_pgoff was free to hold the
  // BAR's pfn: i_mmap keys are pfns (FS-03) and smaps shows the physical
  // address (MMAP-09, MMAP-12).
  vma.setPgoff(PgOff(vdev_.vmaToPfn(vma).value()));
}

void VmaListTracking::open(Vma& vma) {
  // vfio_pci_mmap_open(): a new structure starts empty so that only
  // faulted VMAs are ever listed.
  if (zapOnOpen_) zapVmaPtes(vma, vma.start(), vma.length());
}

void VmaListTracking::close(Vma& vma) {
  MutexGuard list(vmaLock_);
  vmaList_.remove_if([&](const Node& n) { return n.vma == &vma; });
}

bool VmaListTracking::listedLocked(const Vma& vma) const {
  return std::any_of(vmaList_.begin(), vmaList_.end(),
                     [&](const Node& n) { return n.vma == &vma; });
}

void VmaListTracking::addLocked(Vma& vma) { vmaList_.push_back(Node{&vma, &vma.mm()}); }

size_t VmaListTracking::listLength() {
  MutexGuard list(vmaLock_);
  return vmaList_.size();
}

bool VmaListTracking::isListed(const Vma& vma) {
  MutexGuard list(vmaLock_);
  return listedLocked(vma);
}

// Returns holding vma_lock (true) or nothing (false): a conditional
// acquisition the analysis cannot express; lockdep checks it.
bool VmaListTracking::zapAndVmaLock(bool tryMode) NO_THREAD_SAFETY_ANALYSIS {
  for (;;) {
    // The try mode (the hot reset's) gives up at the first contended lock.
    // A trylock never waits, so it is no lock point: the point before each
    // lets another thread take the lock first and the trylock fail.
    if (tryMode) {
      schedPoint("vma_list.trylock");
      if (!vmaLock_.tryLock()) return false;
    } else {
      vmaLock_.lock();
    }
    // Drop entries whose mm is exiting; stop at the first live one.
    std::shared_ptr<Mm> mm;
    while (!vmaList_.empty()) {
      mm = vmaList_.front().mm->weak_from_this().lock();  // mmget_not_zero()
      if (mm != nullptr) break;
      vmaList_.pop_front();
    }
    if (vmaList_.empty()) return true;
    vmaLock_.unlock();
    // mmap_lock before vma_lock, as the fault path takes them.
    if (tryMode) {
      schedPoint("vma_list.trylock");
      if (!mm->mmapLock().downReadTrylock()) return false;
    } else {
      mm->mmapLock().downRead();
    }
    if (tryMode) {
      schedPoint("vma_list.trylock");
      if (!vmaLock_.tryLock()) {
        mm->mmapLock().upRead();
        return false;
      }
    } else {
      vmaLock_.lock();
    }
    for (auto it = vmaList_.begin(); it != vmaList_.end();) {
      if (it->mm != mm.get()) {
        ++it;
        continue;
      }
      Vma* vma = it->vma;
      it = vmaList_.erase(it);
      zapVmaPtes(*vma, vma->start(), vma->length());
      vmaListZapped.add();
    }
    vmaLock_.unlock();
    mm->mmapLock().upRead();
  }
}

// G1: zap first (returns holding vma_lock with an empty list), then the
// write lock, then let vma_lock go.
void VmaListTracking::zapAndDownWriteMemoryLock() NO_THREAD_SAFETY_ANALYSIS {
  zapAndVmaLock(false);
  vdev_.downWriteMemoryLock();
  vdev_.noteZapLocked();
  vmaLock_.unlock();
}

bool VmaListTracking::tryZapAndDownWriteMemoryLock() NO_THREAD_SAFETY_ANALYSIS {
  if (!zapAndVmaLock(true)) return false;
  const bool locked = vdev_.downWriteTrylockMemoryLock();
  if (locked) vdev_.noteZapLocked();
  vmaLock_.unlock();
  return locked;
}

}  // namespace vfiomm
