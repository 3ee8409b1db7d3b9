// `prefault` (ours; no kernel has it): `huge-fault`, plus
//  - when memory decode comes back after a zap (COMMAND.MEM set, D0, the end
//    of a reset or hot reset, low-power exit), every mapping of the device
//    found through its address space is filled again with the largest
//    entries its alignment allows, so the next touch takes no fault;
//  - optionally, the first fault of a VMA fills the whole VMA the same way.
// The refill takes the locks in the fault path's order (mmap_lock, then
// memory_lock, then page-table locks) and holds no lock the fault path takes
// after mmap_lock while it takes an mmap_lock. docs/design-prefault.md has
// the reasoning and the races.
#pragma once

#include <atomic>

#include "vfio/huge_fault_design.h"

namespace vfiomm {

class Mm;

class PrefaultDesign : public HugeFaultDesign {
 public:
  PrefaultDesign(VfioPciCoreDevice& vdev, const DesignOptions& options)
      : HugeFaultDesign(vdev), options_(options) {}

  DesignKind kind() const override { return DesignKind::kPrefault; }
  VmFaultResult hugeFault(VmFault& vmf, unsigned order) const override;
  void memoryEnabled() override;
  void memoryEnabledLocked() override;
  // The naive variant refills right where memory_lock is released, still
  // holding it; lockdep flags the inversion (the test that shows why not).
  bool refillUnderMemoryLock() const { return options_.prefaultNaiveUnderMemoryLock; }
  // Refill every mapping now (what memoryEnabled() does).
  void refillAll();

  uint64_t refills() const { return refills_.load(); }
  uint64_t refilledEntries() const { return refilledEntries_.load(); }

 private:
  // Inserts the largest entries that fit over [vma.start, vma.end) with
  // memory_lock held for read; existing entries are left alone.
  uint64_t fillVmaLocked(Vma& vma) const;
  void refillMm(Mm& mm);
  std::vector<std::shared_ptr<Mm>> mappingMms();

  DesignOptions options_;
  std::atomic<uint64_t> refills_{0};
  mutable std::atomic<uint64_t> refilledEntries_{0};
};

}  // namespace vfiomm
