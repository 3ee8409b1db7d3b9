#include "vfio/design/address_space_tracking.h"

#include "mm/address_space.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

void AddressSpaceTracking::zapBars() {
  // BAR0 up to the ROM: device-specific regions are not zapped (ZAP-01).
  const uint64_t start = vfio::indexToOffset(vfio::kBar0);
  vdev_.mapping().unmapMappingRange(start, vfio::indexToOffset(vfio::kRom) - start, true, flush_);
}

// Take the write lock first, then zap: a fault inside its read section
// finishes first and whatever it installed is zapped. (The seeded bug
// zapBeforeMemoryLock_ zaps first instead.) The lock is handed to the
// caller, which the analysis cannot follow through the virtual call.
void AddressSpaceTracking::zapAndDownWriteMemoryLock() NO_THREAD_SAFETY_ANALYSIS {
  if (zapBeforeMemoryLock_) zapBars();
  vdev_.downWriteMemoryLock();
  if (!zapBeforeMemoryLock_) zapBars();
  vdev_.noteZapLocked();
}

bool AddressSpaceTracking::tryZapAndDownWriteMemoryLock() NO_THREAD_SAFETY_ANALYSIS {
  if (zapBeforeMemoryLock_) zapBars();
  if (!vdev_.downWriteTrylockMemoryLock()) return false;
  if (!zapBeforeMemoryLock_) zapBars();
  vdev_.noteZapLocked();
  return true;
}

}  // namespace vfiomm
