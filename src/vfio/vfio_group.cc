#include "vfio/vfio_group.h"

#include "vfio/vfio_device.h"
#include "vfio/vfio_device_file.h"

namespace vfiomm {

void VfioGroup::addDevice(VfioDevice& device) {
  devices_.push_back(&device);
  device.setGroup(this);
}

void VfioGroup::setContainer(bool set) {
  MutexGuard g(groupLock_);
  hasContainer_ = set;
}

bool VfioGroup::hasContainer() {
  MutexGuard g(groupLock_);
  return hasContainer_;
}

Result<std::shared_ptr<VfioDeviceFile>> VfioGroup::getDeviceFd(const std::string& name) {
  MutexGuard g(groupLock_);
  if (!hasContainer_) return fail(Errno::kEINVAL);
  for (VfioDevice* dev : devices_) {
    if (dev->name() != name) continue;
    // Refused while the device's cdev is open, atomically with the open.
    if (auto st = dev->open(/*viaGroup=*/true); !st) return fail(st.error());
    return std::make_shared<VfioDeviceFile>(*dev, VfioOpenPath::kGroup, anonInode_, true, true);
  }
  return fail(Errno::kENODEV);
}

}  // namespace vfiomm
