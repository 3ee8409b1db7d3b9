// VfioContainer: what /dev/vfio/vfio's file holds (struct vfio_container,
// drivers/vfio/container.c): the groups set to it and, once VFIO_SET_IOMMU
// chose one, the IOMMU driver instance (type1 here) that all its groups'
// devices DMA through. The driver's ioctls reach it only through here.
#pragma once

#include <memory>
#include <vector>

#include "base/result.h"
#include "sync/mutex.h"
#include "vfio/vfio_iommu_type1.h"

namespace vfiomm {

class Iommu;
class KernelLog;
class SystemRam;
class VfioGroup;
struct VfioProfile;

inline const LockClass kVfioContainerGroupLockClass{"&container->group_lock"};

class VfioContainer {
 public:
  VfioContainer(Iommu& iommu, SystemRam& ram, KernelLog& log, const VfioProfile& profile,
                const Type1Params& type1Params = {});
  VfioContainer(const VfioContainer&) = delete;
  VfioContainer& operator=(const VfioContainer&) = delete;

  // VFIO_CHECK_EXTENSION: the driver set, else every driver (type1 only).
  long checkExtension(unsigned long ext) EXCLUDES(groupLock_);
  // VFIO_SET_IOMMU(TYPE1 or TYPE1v2): -EINVAL without a group (only a
  // group's owner may allocate IOMMU resources) or for a second one,
  // -ENODEV for a type no driver offers. The groups set are attached.
  Status setIommu(unsigned long type) EXCLUDES(groupLock_);
  // VFIO_GROUP_SET_CONTAINER: the group's devices join the driver's domain
  // now, or at SET_IOMMU.
  // vfio_container_attach_group(): the driver's refusal leaves the group
  // out of the container.
  Status attachGroup(VfioGroup& group) EXCLUDES(groupLock_);
  // vfio_group_detach_container(): the group's devices leave the domain;
  // the last group's departure releases the driver instance, and with it
  // every DMA mapping (there is no unset of SET_IOMMU otherwise).
  void detachGroup(VfioGroup& group) EXCLUDES(groupLock_);
  // Whether SET_IOMMU chose a driver (vfio_group_use_container()'s check).
  bool hasDriver() EXCLUDES(groupLock_);

  // Any other container ioctl: the driver's, -EINVAL before SET_IOMMU.
  Result<long> driverIoctl(unsigned long request, void* arg, const Type1Caller& caller)
      EXCLUDES(groupLock_);

  // The driver instance, or nullptr before SET_IOMMU (tests, monitors).
  VfioIommuType1* type1() EXCLUDES(groupLock_);

 private:
  void attachDevices(const VfioGroup& group) REQUIRES(groupLock_);
  void detachDevices(const VfioGroup& group) REQUIRES(groupLock_);

  Iommu& iommu_;
  SystemRam& ram_;
  KernelLog& log_;
  const VfioProfile& profile_;
  const Type1Params type1Params_;
  // An rwsem in the kernel (ioctls take it for read); exclusive here.
  Mutex groupLock_{kVfioContainerGroupLockClass};
  std::vector<VfioGroup*> groups_ GUARDED_BY(groupLock_);
  std::unique_ptr<VfioIommuType1> driver_ GUARDED_BY(groupLock_);
};

}  // namespace vfiomm
