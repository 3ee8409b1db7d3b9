#include "vfio/prefault_design.h"

#include <vector>

#include "base/counter.h"
#include "mm/address_space.h"
#include "mm/file.h"
#include "mm/mm.h"
#include "mm/pfn_insert.h"
#include "mm/vma.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(prefaultRefills, "vfio.prefault.refills", "address-space refills after decode came back");
VFIOMM_COUNTER(prefaultEntries, "vfio.prefault.entries", "entries inserted by prefault refills and fills");

}  // namespace

VmFaultResult PrefaultDesign::hugeFault(VmFault& vmf, unsigned order) const {
  const std::optional<VirtAddr> block = hugeBlock(vmf, order);
  if (!block) return vmfault::kFallback;
  ReadGuard memory(vdev_.memoryLock());
  if (!vdev_.faultAllowedLocked()) return vmfault::kSigbus;
  const VmFaultResult ret = insert(vmf, order, *block);
  if (options_.prefaultFillOnFirstFault && !(ret & vmfault::kError))
    refilledEntries_.fetch_add(fillVmaLocked(*vmf.vma));
  return ret;
}

uint64_t PrefaultDesign::fillVmaLocked(Vma& vma) const {
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
      if (hugeOk && a.isAligned(size) && a + size <= vma.end() && pfnAt(vma, a).isAligned(o)) {
        order = o;
        break;
      }
    }
    VmFault vmf;
    vmf.vma = &vma;
    vmf.address = a;
    vmf.realAddress = a;
    vmf.pgoff = vma.linearPageIndex(a);
    const VmFaultResult r = insert(vmf, order, a);
    // Stop at an error (a table could not be allocated): faults will do
    // the rest, as in G2's prefault.
    if (r & vmfault::kError) break;
    ++inserted;
    a = a + (kPageSize << order);
  }
  prefaultEntries.add(inserted);
  return inserted;
}

void PrefaultDesign::memoryEnabled() {
  if (refillUnderMemoryLock()) return;  // done inside the locked section instead
  refillAll();
}

// Collect the mms mapping the device under i_mmap_rwsem (read), taking a
// reference on each, then drop it: an mmap_lock may not be taken under
// i_mmap_rwsem (munmap takes them the other way round). An mm nobody owns
// through a shared_ptr (or one being torn down) cannot be pinned: skipped.
std::vector<std::shared_ptr<Mm>> PrefaultDesign::mappingMms() {
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

void PrefaultDesign::refillAll() {
  refills_.fetch_add(1);
  prefaultRefills.add();
  for (auto& mm : mappingMms()) refillMm(*mm);
}

// The naive version: refill from inside the memory_lock write section. It
// needs each mm's mmap_lock there, i.e. memory_lock -> mmap_lock, the
// reverse of every fault: lockdep reports the cycle (docs/design-prefault.md).
void PrefaultDesign::memoryEnabledLocked() NO_THREAD_SAFETY_ANALYSIS {
  if (!refillUnderMemoryLock()) return;
  refills_.fetch_add(1);
  prefaultRefills.add();
  for (auto& mm : mappingMms()) {
    ReadGuard mmap(mm->mmapLock());
    if (mm->exited()) continue;
    for (Vma* vma : mm->vmasMapping(vdev_.mapping()))
      if (vma->ops() == this) refilledEntries_.fetch_add(fillVmaLocked(*vma));
  }
}

void PrefaultDesign::refillMm(Mm& mm) {
  // The fault path's order: mmap_lock, then memory_lock. The VMAs are found
  // again under the mmap lock: munmap, mremap or exit may have changed them
  // since they were collected.
  ReadGuard mmap(mm.mmapLock());
  if (mm.exited()) return;
  ReadGuard memory(vdev_.memoryLock());
  // A new zap may have come first: never map a BAR whose decode is off.
  if (!vdev_.faultAllowedLocked()) return;
  for (Vma* vma : mm.vmasMapping(vdev_.mapping())) {
    if (vma->ops() != this) continue;
    const uint64_t index = vma->pgoff().value() >> vfio::kPgoffIndexShift;
    if (index >= vfio::kRom) continue;
    refilledEntries_.fetch_add(fillVmaLocked(*vma));
  }
}

}  // namespace vfiomm
