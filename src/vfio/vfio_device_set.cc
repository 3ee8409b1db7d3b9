#include "vfio/vfio_device_set.h"

#include <algorithm>

#include "pci/pci_bus.h"
#include "pci/pci_regs.h"
#include "vfio/vfio_device.h"

namespace vfiomm {

void VfioDeviceSet::addDevice(VfioDevice& device) {
  devices_.push_back(&device);
  device.setDevSet(this);
}

Result<std::vector<VfioDevice*>> VfioDeviceSet::hotResetInfo(VfioDevice&) {
  if (!bus_.slotResetAvailable() && !bus_.busResetAvailable()) return fail(Errno::kENODEV);
  return devices_;
}

bool VfioDeviceSet::owned(const VfioDevice& dev, const HotResetOwner& owner) const {
  if (owner.cdev) return dev.boundIommufd() != 0 && dev.boundIommufd() == owner.iommufd;
  return std::find(owner.groups.begin(), owner.groups.end(), dev.group()) != owner.groups.end();
}

Status VfioDeviceSet::hotReset(VfioDevice& requester, const HotResetOwner& owner,
                               uint32_t flags) {
  if (flags != 0) return fail(Errno::kEINVAL);
  // A cdev caller passes no groups; a group caller must pass some.
  if (owner.cdev != owner.groups.empty()) return fail(Errno::kEINVAL);
  if (!bus_.slotResetAvailable() && !bus_.busResetAvailable()) return fail(Errno::kENODEV);
  std::vector<VfioDevice*> refill;
  Status status = ok();
  {
    MutexGuard g(lock_);
    status = resetLocked(requester, owner, &refill);
  }
  // prefault's refill takes mmap_locks: never while any memory_lock (or
  // dev_set->lock) of the set is held.
  for (VfioDevice* dev : refill) dev->pci().design().memoryEnabled();
  return status;
}

// Holds a dynamic set of memory_locks, which the analysis cannot track;
// lockdep sees every one of them.
Status VfioDeviceSet::resetLocked(VfioDevice& requester, const HotResetOwner& owner,
                                 std::vector<VfioDevice*>* refill) NO_THREAD_SAFETY_ANALYSIS {
  // Every device the reset affects must be in this dev_set.
  for (PciDevice* pdev : bus_.resetScope(requester.pdev())) {
    const bool inSet = std::any_of(devices_.begin(), devices_.end(),
                                   [&](VfioDevice* d) { return &d->pdev() == pdev; });
    if (!inSet) return fail(Errno::kEINVAL);
  }
  // G2+: one loop of trylock + zap; a failure unwinds the locks taken but
  // the devices zapped so far stay zapped (they refault).
  std::vector<VfioDevice*> locked;
  Status status = ok();
  for (VfioDevice* dev : devices_) {
    if (!owned(*dev, owner)) {
      status = fail(Errno::kEINVAL);
      break;
    }
    if (!dev->pci().tryZapAndDownWriteMemoryLock()) {
      status = fail(Errno::kEBUSY);
      break;
    }
    locked.push_back(dev);
  }
  if (status) {
    for (VfioDevice* dev : locked)
      if (const auto pm = dev->pdev().pmCapOffset())
        (void)dev->pdev().configWrite(*pm + kPciPmCtrl, 2, 0);  // D0
    status = bus_.resetBus(requester.pdev());
  }
  for (auto it = locked.rbegin(); it != locked.rend(); ++it)
    if ((*it)->pci().upWriteMemoryLockDeferRefill()) refill->push_back(*it);
  return status;
}

}  // namespace vfiomm
