#include "vfio/vfio_group.h"

#include "vfio/vfio_device.h"
#include "vfio/vfio_device_file.h"

namespace vfiomm {

void VfioGroup::addDevice(VfioDevice& device) {
  devices_.push_back(&device);
  device.setGroup(this);
}

Inode& VfioGroup::anonInode() {
  static Inode inode(0);  // anon_inode_inode
  return inode;
}

Result<std::shared_ptr<VfioDeviceFile>> VfioGroup::getDeviceFd(const std::string& name) {
  if (!hasContainer_) return fail(Errno::kEINVAL);
  for (VfioDevice* dev : devices_) {
    if (dev->name() != name) continue;
    if (dev->cdevOpen()) return fail(Errno::kEBUSY);
    if (auto st = dev->open(); !st) return fail(st.error());
    return std::make_shared<VfioDeviceFile>(*dev, VfioOpenPath::kGroup, anonInode(), true, true);
  }
  return fail(Errno::kENODEV);
}

}  // namespace vfiomm
