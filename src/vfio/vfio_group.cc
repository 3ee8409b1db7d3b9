#include "vfio/vfio_group.h"

#include "vfio/vfio_container.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_device_file.h"

namespace vfiomm {

void VfioGroup::addDevice(VfioDevice& device) {
  devices_.push_back(&device);
  device.setGroup(this);
}

Status VfioGroup::open() {
  MutexGuard g(groupLock_);
  // One open file per group: a second user must share it (fork, SCM_RIGHTS).
  if (fileRefs_ != 0) return fail(Errno::kEBUSY);
  fileRefs_ = 1;
  return ok();
}

void VfioGroup::put() {
  MutexGuard g(groupLock_);
  if (--fileRefs_ == 0) detach();
}

Status VfioGroup::setContainer(std::shared_ptr<VfioContainer> container) {
  MutexGuard g(groupLock_);
  if (hasIommu()) return fail(Errno::kEINVAL);
  if (container == nullptr) return fail(Errno::kEBADFD);
  container->attachGroup(*this);
  container_ = std::move(container);
  return ok();
}

Status VfioGroup::unsetContainer() {
  MutexGuard g(groupLock_);
  if (!hasIommu()) return fail(Errno::kEINVAL);
  // Device files hold the container (container_users > 1).
  if (deviceFiles_ != 0) return fail(Errno::kEBUSY);
  detach();
  return ok();
}

bool VfioGroup::hasContainer() {
  MutexGuard g(groupLock_);
  return hasIommu();
}

void VfioGroup::detach() {
  if (container_ != nullptr) container_->detachGroup(*this);
  container_.reset();
}

Result<std::shared_ptr<VfioDeviceFile>> VfioGroup::getDeviceFd(const std::string& name) {
  MutexGuard g(groupLock_);
  for (VfioDevice* dev : devices_)
    if (dev->name() == name) return openDevice(*dev);
  return fail(Errno::kENODEV);
}

Result<std::shared_ptr<VfioDeviceFile>> VfioGroup::openDevice(VfioDevice& dev) {
  if (!hasIommu()) return fail(Errno::kEINVAL);
  // vfio_group_use_container(): the container must have its IOMMU driver.
  if (!container_->hasDriver()) return fail(Errno::kEINVAL);
  // Refused while the device's cdev is open, atomically with the open.
  if (auto st = dev.open(/*viaGroup=*/true); !st) return fail(st.error());
  ++deviceFiles_;
  ++fileRefs_;
  return std::make_shared<VfioDeviceFile>(dev, VfioOpenPath::kGroup, anonInode_, true, true);
}

void VfioGroup::deviceFileReleased() {
  MutexGuard g(groupLock_);
  --deviceFiles_;
  if (--fileRefs_ == 0) detach();
}

}  // namespace vfiomm
