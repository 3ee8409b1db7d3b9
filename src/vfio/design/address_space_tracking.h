// Zap tracking since 6.10 (G2s onwards): no record of VMAs; the zap is
// unmap_mapping_range over the device inode's address space, whose i_mmap
// tree holds every VMA mapping the device, forked, moved or split
// (vfio-bar-mapping.md §7.1, §12).
#pragma once

#include "mm/pfn_insert.h"
#include "vfio/design/zap_tracking.h"

namespace vfiomm {

class VfioPciCoreDevice;

class AddressSpaceTracking final : public ZapTracking {
 public:
  // `zapBeforeMemoryLock`, and `flush` kSkipped: the seeded bugs of
  // DesignOptions.
  AddressSpaceTracking(VfioPciCoreDevice& vdev, bool zapBeforeMemoryLock, ZapFlush flush)
      : vdev_(vdev), zapBeforeMemoryLock_(zapBeforeMemoryLock), flush_(flush) {}

  void zapAndDownWriteMemoryLock() override;
  bool tryZapAndDownWriteMemoryLock() override;

 private:
  // vfio_pci_zap_bars(): remove every mapping of BAR0-5 in every process.
  void zapBars();

  VfioPciCoreDevice& vdev_;
  const bool zapBeforeMemoryLock_;
  const ZapFlush flush_;
};

}  // namespace vfiomm
