#include "vfio/vfio_container.h"

#include <algorithm>

#include "abi/vfio.h"
#include "iommu/iommu.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_group.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

VfioContainer::VfioContainer(Iommu& iommu, SystemRam& ram, KernelLog& log,
                             const VfioProfile& profile, const Type1Params& type1Params)
    : iommu_(iommu), ram_(ram), log_(log), profile_(profile), type1Params_(type1Params) {}

long VfioContainer::checkExtension(unsigned long ext) {
  MutexGuard g(groupLock_);
  return VfioIommuType1::checkExtension(driver_.get(), ext);
}

Status VfioContainer::setIommu(unsigned long type) {
  MutexGuard g(groupLock_);
  if (groups_.empty() || driver_ != nullptr) return fail(Errno::kEINVAL);
  if (type != uapi::VFIO_TYPE1_IOMMU && type != uapi::VFIO_TYPE1v2_IOMMU)
    return fail(Errno::kENODEV);
  driver_ = std::make_unique<VfioIommuType1>(iommu_, ram_, log_, profile_,
                                             type == uapi::VFIO_TYPE1v2_IOMMU, type1Params_);
  for (const VfioGroup* group : groups_) attachDevices(*group);
  return ok();
}

Status VfioContainer::attachGroup(VfioGroup& group) {
  MutexGuard g(groupLock_);
  if (driver_ != nullptr) {
    if (auto st = driver_->mayAttachGroup(); !st) return st;
  }
  groups_.push_back(&group);
  if (driver_ != nullptr) attachDevices(group);
  return ok();
}

void VfioContainer::detachGroup(VfioGroup& group) {
  MutexGuard g(groupLock_);
  auto it = std::find(groups_.begin(), groups_.end(), &group);
  if (it == groups_.end()) return;
  groups_.erase(it);
  if (driver_ == nullptr) return;
  detachDevices(group);
  if (groups_.empty()) driver_.reset();
}

bool VfioContainer::hasDriver() {
  MutexGuard g(groupLock_);
  return driver_ != nullptr;
}

void VfioContainer::detachDevices(const VfioGroup& group) {
  for (VfioDevice* device : group.devices()) iommu_.detachDevice(device->pci().pdev());
}

void VfioContainer::attachDevices(const VfioGroup& group) {
  for (VfioDevice* device : group.devices()) driver_->attachDevice(device->pci().pdev());
}

Result<long> VfioContainer::driverIoctl(unsigned long request, void* arg,
                                        const Type1Caller& caller) {
  MutexGuard g(groupLock_);
  if (driver_ == nullptr) return fail(Errno::kEINVAL);
  return driver_->ioctl(request, arg, caller);
}

VfioIommuType1* VfioContainer::type1() {
  MutexGuard g(groupLock_);
  return driver_.get();
}

}  // namespace vfiomm
