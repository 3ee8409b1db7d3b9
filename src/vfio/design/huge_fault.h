// The fault of Linux 6.12+ (G3): vfio_pci_mmap_huge_fault(vmf, order) for
// orders 18, 9 and 0, with the fallback rule of the profile's g3_variant:
// G3.0 (the misaligned-pfn leaf of bug 219619), G3.1 (the fallback race of
// bugzilla 220057), G3.2 (stable) — vfio-bar-mapping.md §5.4.
#pragma once

#include <optional>

#include "mm/pfn_insert.h"
#include "vfio/design/fault_policy.h"

namespace vfiomm {

class RefillPolicy;

class HugeFault final : public FaultPolicy {
 public:
  // `lock` kSkipped: the seeded bug DesignOptions::insertWithoutPtl.
  HugeFault(VfioPciCoreDevice& vdev, RefillPolicy& refill, InsertLock lock)
      : vdev_(vdev), refill_(refill), lock_(lock) {}

  VmFaultResult fault(VmFault& vmf) override { return hugeFault(vmf, 0); }
  bool hasHugeFault() const override { return true; }
  VmFaultResult hugeFault(VmFault& vmf, unsigned order) override;

  // Inserts the entry of `order` (0, PMD or PUD) mapping `pfn` at `block`,
  // the fault address for order 0; memory_lock held for read.
  static VmFaultResult insert(VmFault& vmf, unsigned order, VirtAddr block, Pfn pfn,
                              InsertLock lock = InsertLock::kPtl);

 private:
  // The fallback test, done before any lock: the block to map, or nullopt.
  std::optional<VirtAddr> hugeBlock(const VmFault& vmf, unsigned order) const;

  VfioPciCoreDevice& vdev_;
  RefillPolicy& refill_;
  const InsertLock lock_;
};

}  // namespace vfiomm
