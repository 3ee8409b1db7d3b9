#include "vfio/vfio_group.h"

#include "iommufd/iommufd_ctx.h"
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

Status VfioGroup::setContainer(std::shared_ptr<VfioContainer> container,
                               std::shared_ptr<IommufdCtx> ictx) {
  MutexGuard g(groupLock_);
  if (hasIommu()) return fail(Errno::kEINVAL);
  if (container != nullptr) {
    if (auto st = container->attachGroup(*this); !st) return st;
    container_ = std::move(container);
    return ok();
  }
  if (ictx == nullptr) return fail(Errno::kEBADFD);
  if (auto st = ictx->compatIoasCreate(); !st) return st;
  iommufd_ = std::move(ictx);
  return ok();
}

Status VfioGroup::unsetContainer() {
  MutexGuard g(groupLock_);
  if (!hasIommu()) return fail(Errno::kEINVAL);
  // Device files hold a container (container_users > 1); an iommufd is let
  // go with devices open, which keep their own reference (df->iommufd).
  if (container_ != nullptr && deviceFiles_ != 0) return fail(Errno::kEBUSY);
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
  iommufd_.reset();
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
  if (container_ != nullptr && !container_->hasDriver()) return fail(Errno::kEINVAL);
  // Refused while the device's cdev is open, atomically with the open.
  if (auto st = dev.open(/*viaGroup=*/true); !st) return fail(st.error());
  if (iommufd_ != nullptr && dev.openCount() == 1) {
    // The first open binds the device to the iommufd and attaches it to
    // the compat IOAS (vfio_iommufd_compat_attach_ioas()).
    auto devid = iommufd_->compatAttachDevice(dev.pdev());
    if (!devid) {
      dev.close();
      return fail(devid.error());
    }
    compatBound_[&dev] = CompatBinding{iommufd_, *devid};
  }
  ++deviceFiles_;
  ++fileRefs_;
  return std::make_shared<VfioDeviceFile>(dev, VfioOpenPath::kGroup, anonInode_, true, true);
}

void VfioGroup::deviceFileReleased(VfioDevice& dev) {
  MutexGuard g(groupLock_);
  // After close_device, the last close unbinds from the iommufd it was
  // bound to, which an UNSET_CONTAINER since may have let go of.
  auto bound = compatBound_.find(&dev);
  if (bound != compatBound_.end() && dev.openCount() == 0) {
    bound->second.ictx->detachDevice(bound->second.devid);
    compatBound_.erase(bound);
  }
  --deviceFiles_;
  if (--fileRefs_ == 0) detach();
}

}  // namespace vfiomm
