#include "vfio/design/prefault_walk.h"

#include "base/counter.h"
#include "mm/address_space.h"
#include "mm/mm.h"
#include "mm/pfn_insert.h"
#include "mm/vma.h"
#include "vfio/design/huge_fault.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(prefaultRefills, "vfio.prefault.refills",
               "address-space refills after decode came back");
VFIOMM_COUNTER(prefaultEntries, "vfio.prefault.entries",
               "entries inserted by prefault refills and fills");

}  // namespace

void PrefaultWalk::faulted(Vma& vma) {
  if (fillOnFault_) fillVmaLocked(vma);
}

void PrefaultWalk::fillVmaLocked(Vma& vma) {
  // The fault path's thp_vma_allowable_order() (mm-pfnmap.md §9.3), THP
  // sysfs gate included: the fill makes no huge entry a fault could not.
  const Mm& mm = vma.mm();
  bool hugeOk = !(vma.flags() & vm::kNoHugepage) && !mm.thpDisabled();
  if (hugeOk && mm.profile().thpSysfsGatesPfnmap)
    hugeOk = mm.thpEnabled() == ThpEnabled::kAlways ||
             (mm.thpEnabled() == ThpEnabled::kMadvise && (vma.flags() & vm::kHugepage) != 0);
  uint64_t inserted = 0;
  VirtAddr a = vma.start();
  while (a < vma.end()) {
    unsigned order = 0;
    for (unsigned o : {kPudOrder, kPmdOrder}) {
      const uint64_t size = kPageSize << o;
      if (hugeOk && a.isAligned(size) && a + size <= vma.end() &&
          pfnAt(vdev_, vma, a).isAligned(o)) {
        order = o;
        break;
      }
    }
    VmFault vmf;
    vmf.vma = &vma;
    vmf.address = a;
    vmf.realAddress = a;
    vmf.pgoff = vma.linearPageIndex(a);
    const VmFaultResult r = HugeFault::insert(vmf, order, a, pfnAt(vdev_, vma, a));
    // Stop at an error (a table could not be allocated): faults will do
    // the rest, as in G2's prefault.
    if (r & vmfault::kError) break;
    ++inserted;
    a = a + (kPageSize << order);
  }
  prefaultEntries.add(inserted);
  refilledEntries_.fetch_add(inserted);
}

void PrefaultWalk::memoryEnabled() {
  if (underMemoryLock_) return;  // done inside the locked section instead
  refillAll();
}

void PrefaultWalk::countRefill() {
  refills_.fetch_add(1);
  prefaultRefills.add();
}

// Collect the mms mapping the device under i_mmap_rwsem (read), taking a
// reference on each, then drop it: an mmap_lock may not be taken under
// i_mmap_rwsem (munmap takes them the other way round). An mm nobody owns
// through a shared_ptr (or one being torn down) cannot be pinned: skipped.
std::vector<std::shared_ptr<Mm>> PrefaultWalk::mappingMms() {
  std::vector<std::shared_ptr<Mm>> mms;
  AddressSpace& mapping = vdev_.mapping();
  ReadGuard i(mapping.iMmapRwsem());
  const uint64_t last = (vfio::indexToOffset(vfio::kRom) >> kPageShift) - 1;
  mapping.forEachVma(0, last, [&](Vma& vma) {
    std::shared_ptr<Mm> mm = vma.mm().weak_from_this().lock();  // mmget_not_zero()
    if (mm == nullptr) return;
    for (const auto& seen : mms)
      if (seen == mm) return;
    mms.push_back(std::move(mm));
  });
  return mms;
}

void PrefaultWalk::refillAll() {
  countRefill();
  for (auto& mm : mappingMms()) refillMm(*mm);
}

// The naive version: refill from inside the memory_lock write section. It
// needs each mm's mmap_lock there, i.e. memory_lock -> mmap_lock, the
// reverse of every fault: lockdep reports the cycle (docs/design-prefault.md).
void PrefaultWalk::memoryEnabledLocked() NO_THREAD_SAFETY_ANALYSIS {
  if (!underMemoryLock_) return;
  countRefill();
  for (auto& mm : mappingMms()) {
    ReadGuard mmap(mm->mmapLock());
    if (mm->exited()) continue;
    for (Vma* vma : mm->vmasMapping(vdev_.mapping()))
      if (vma->ops() == &vdev_.design()) fillVmaLocked(*vma);
  }
}

void PrefaultWalk::refillMm(Mm& mm) {
  // The fault path's order: mmap_lock, then memory_lock. The VMAs are found
  // again under the mmap lock: munmap, mremap or exit may have changed them
  // since they were collected.
  ReadGuard mmap(mm.mmapLock());
  if (mm.exited()) return;
  ReadGuard memory(vdev_.memoryLock());
  // A new zap may have come first: never map a BAR whose decode is off.
  if (!vdev_.faultAllowedLocked()) return;
  for (Vma* vma : mm.vmasMapping(vdev_.mapping())) {
    if (vma->ops() != &vdev_.design()) continue;
    const uint64_t index = vma->pgoff().value() >> vfio::kPgoffIndexShift;
    if (index >= vfio::kRom) continue;
    fillVmaLocked(*vma);
  }
}

}  // namespace vfiomm
