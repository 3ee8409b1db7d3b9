// VfioDeviceSet models struct vfio_device_set: the vfio devices a bus or
// slot reset affects together, under dev_set->lock, and the hot reset over
// them (vfio_pci_dev_set_hot_reset, vfio-bar-mapping.md §9).
#pragma once

#include <vector>

#include "base/result.h"
#include "sync/mutex.h"

namespace vfiomm {

class PciBus;
class VfioDevice;
class VfioGroup;

inline const LockClass kVfioDevSetLockClass{"&dev_set->lock"};

// Who asks for the reset: the groups it passed (group path) or the iommufd
// context its cdev file is bound to.
struct HotResetOwner {
  std::vector<const VfioGroup*> groups;
  int iommufd = 0;
  bool cdev = false;
};

class VfioDeviceSet {
 public:
  explicit VfioDeviceSet(PciBus& bus) : bus_(bus) {}

  void addDevice(VfioDevice& device);
  const std::vector<VfioDevice*>& devices() const { return devices_; }

  // VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: the devices affected.
  Result<std::vector<VfioDevice*>> hotResetInfo(VfioDevice& requester);
  // VFIO_DEVICE_PCI_HOT_RESET.
  Status hotReset(VfioDevice& requester, const HotResetOwner& owner, uint32_t flags);

 private:
  bool owned(const VfioDevice& dev, const HotResetOwner& owner) const;
  // Returns the devices whose design wants its memoryEnabled() hook run
  // once every lock is dropped.
  Status resetLocked(VfioDevice& requester, const HotResetOwner& owner,
                     std::vector<VfioDevice*>* refill) REQUIRES(lock_);

  PciBus& bus_;
  Mutex lock_{kVfioDevSetLockClass};
  std::vector<VfioDevice*> devices_;
};

}  // namespace vfiomm
