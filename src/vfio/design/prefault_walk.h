// The refill of `prefault` (ours; no kernel has it):
//  - when memory decode comes back after a zap (COMMAND.MEM set, D0, the end
//    of a reset or hot reset, low-power exit), every mapping of the device
//    found through its address space is filled again with the largest
//    entries its alignment allows, so the next touch takes no fault;
//  - optionally, a fault's VMA is filled the same way right after the fault.
// The walk takes the locks in the fault path's order (mmap_lock, then
// memory_lock, then page-table locks) and holds no lock the fault path takes
// after mmap_lock while it takes an mmap_lock. It finds VMAs through i_mmap,
// so it needs vm_pgoff to stay the file offset (AddressSpaceTracking).
// docs/design-prefault.md has the reasoning and the races.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "vfio/design/refill_policy.h"

namespace vfiomm {

class Mm;
class VfioPciCoreDevice;

class PrefaultWalk final : public RefillPolicy {
 public:
  // DesignOptions::prefaultFillOnFirstFault and
  // DesignOptions::prefaultNaiveUnderMemoryLock.
  PrefaultWalk(VfioPciCoreDevice& vdev, bool fillOnFault, bool underMemoryLock)
      : vdev_(vdev), fillOnFault_(fillOnFault), underMemoryLock_(underMemoryLock) {}

  void faulted(Vma& vma) override;
  void memoryEnabled() override;
  void memoryEnabledLocked() override;

  // Walks of the address space, and the entries this device's walks and
  // fills inserted.
  uint64_t refills() const { return refills_.load(); }
  uint64_t refilledEntries() const { return refilledEntries_.load(); }

 private:
  // Inserts the largest entries that fit over [vma.start, vma.end) with
  // memory_lock held for read; existing entries are left alone.
  void fillVmaLocked(Vma& vma);
  void refillAll();
  void refillMm(Mm& mm);
  std::vector<std::shared_ptr<Mm>> mappingMms();
  // One more walk, counted.
  void countRefill();

  VfioPciCoreDevice& vdev_;
  const bool fillOnFault_;
  const bool underMemoryLock_;
  std::atomic<uint64_t> refills_{0};
  std::atomic<uint64_t> refilledEntries_{0};
};

}  // namespace vfiomm
