// VfioDeviceSet models struct vfio_device_set: the vfio devices a bus or
// slot reset affects together, under dev_set->lock, and the hot reset over
// them (vfio_pci_dev_set_hot_reset, vfio-bar-mapping.md §9).
#pragma once

#include <vector>

#include "base/result.h"
#include "sync/mutex.h"
#include "vfio/vfio_pci_core_device.h"
#include "vfio/vfio_profile.h"

namespace vfiomm::uapi {
struct vfio_pci_dependent_device;
}

namespace vfiomm {

class PciBus;
class PciDevice;
class VfioDevice;
class VfioGroup;

inline const LockClass kVfioDevSetLockClass{"&dev_set->lock"};

// Who asks for the reset: the groups it passed (group path) or the iommufd
// context its cdev file is bound to.
struct HotResetOwner {
  std::vector<const VfioGroup*> groups;
  int iommufd = 0;
  bool cdev = false;
  VfioProfile profile;  // the kernel's version switches (hot_reset_cdev)
};

class VfioDeviceSet {
 public:
  explicit VfioDeviceSet(PciBus& bus) : bus_(bus) {}

  void addDevice(VfioDevice& device);
  const std::vector<VfioDevice*>& devices() const { return devices_; }

  // VFIO_DEVICE_GET_PCI_HOT_RESET_INFO on the caller's
  // vfio_pci_hot_reset_info (vfio-uapi.md §7.1); `owner` says how the
  // caller's file was opened (its groups are not used).
  Result<long> hotResetInfoIoctl(VfioDevice& requester, const HotResetOwner& owner, void* arg);
  // VFIO_DEVICE_PCI_HOT_RESET on the caller's vfio_pci_hot_reset (§7.2):
  // the argument checks in the kernel's order, then hotReset().
  Result<long> hotResetIoctl(VfioDevice& requester, HotResetOwner owner, void* arg,
                             const VfioIoctlCaller& caller);
  // vfio_pci_dev_set_hot_reset(): every device of the reset's scope must be
  // in the set and owned by the caller.
  Status hotReset(VfioDevice& requester, const HotResetOwner& owner);

 private:
  // The devices pci_reset_bus() would reach from `requester` (slot or bus
  // scope); -ENODEV when neither reset is possible.
  Result<std::vector<PciDevice*>> probeResetScope(const VfioDevice& requester) const;
  VfioDevice* vfioDevice(const PciDevice* pdev) const;
  Status fillDependent(const PciDevice& pdev, const HotResetOwner& owner,
                       uapi::vfio_pci_dependent_device* entry, uint32_t* flags) const;
  bool owned(const VfioDevice& dev, const HotResetOwner& owner) const;
  // Returns the devices whose design wants its memoryEnabled() hook run
  // once every lock is dropped.
  Status resetLocked(VfioDevice& requester, const HotResetOwner& owner,
                     std::vector<VfioDevice*>* refill) REQUIRES(lock_);
  // memory_lock of `dev` for write by trylock, and its zap; false: busy.
  static bool tryLockForReset(VfioDevice& dev, VfioDevice& requester);
  // The devices resumed: every memory_lock by trylock + zap, then the bus.
  Status lockAndResetBus(VfioDevice& requester, const HotResetOwner& owner,
                         std::vector<VfioDevice*>* refill) REQUIRES(lock_);

  PciBus& bus_;
  Mutex lock_{kVfioDevSetLockClass};
  std::vector<VfioDevice*> devices_;
};

}  // namespace vfiomm
