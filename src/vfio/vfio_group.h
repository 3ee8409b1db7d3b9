// VfioGroup: the legacy group path (/dev/vfio/N, drivers/vfio/group.c).
// Its file opens once at a time; VFIO_GROUP_SET_CONTAINER gives it a
// container or, with a /dev/iommu fd, that iommufd's compat IOAS
// (dma-mapping.md §3.3); once the container has an IOMMU driver (or at
// once with an iommufd), VFIO_GROUP_GET_DEVICE_FD opens a device of
// the group and hands out an anon-inode file whose f_mapping is replaced by
// the device's. A device file holds the group file (get_file), so the
// group is released, and leaves its container, only when the group fd and
// every device file from it are closed (dma-mapping.md §1.2).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "fs/inode.h"
#include "sync/mutex.h"

namespace vfiomm {

class IommufdCtx;
class VfioContainer;
class VfioDevice;
class VfioDeviceFile;

inline const LockClass kVfioGroupLockClass{"&group->group_lock"};

class VfioGroup {
 public:
  VfioGroup(int id, Inode& anonInode) : id_(id), anonInode_(anonInode) {}

  int id() const { return id_; }
  // Setup only (Kernel::addVfioDevice), before any syscall can see the group.
  void addDevice(VfioDevice& device);
  const std::vector<VfioDevice*>& devices() const { return devices_; }

  // vfio_group_fops_open(): -EBUSY while the group file is open.
  Status open() EXCLUDES(groupLock_);
  // fput() of the group file: the last reference runs
  // vfio_group_fops_release(), which leaves the container or iommufd.
  void put() EXCLUDES(groupLock_);

  // VFIO_GROUP_SET_CONTAINER with the file's container or iommufd (both
  // nullptr: the file is neither): -EINVAL when the group already has a
  // container or iommufd, then -EBADFD for a file that is neither. An
  // iommufd's compat IOAS is created or reused.
  Status setContainer(std::shared_ptr<VfioContainer> container, std::shared_ptr<IommufdCtx> ictx)
      EXCLUDES(groupLock_);
  // VFIO_GROUP_UNSET_CONTAINER: -EINVAL without a container or iommufd,
  // -EBUSY while a device file of the group holds the container.
  Status unsetContainer() EXCLUDES(groupLock_);
  // VFIO_GROUP_GET_STATUS: VIABLE | CONTAINER_SET.
  bool hasContainer() EXCLUDES(groupLock_);

  // VFIO_GROUP_GET_DEVICE_FD: -EINVAL without a container whose IOMMU is
  // set, or an iommufd. group_lock is held across the device's open, as
  // vfio_df_group_open() holds it (group_lock -> dev_set->lock); through an
  // iommufd the first open binds the device and attaches it to the compat
  // IOAS.
  Result<std::shared_ptr<VfioDeviceFile>> getDeviceFd(const std::string& name) EXCLUDES(groupLock_);
  // A device file of the group path was released (after the device's
  // close): vfio_group_unuse_container() and the fput() of the group file.
  void deviceFileReleased(VfioDevice& dev) EXCLUDES(groupLock_);

  // The kernel's single anon inode every group-path file has as f_inode
  // (anon_inode_getfile): on the anon-inode superblock, boot dependent in
  // Linux (st_dev 0:14 and a low inode number here).
  Inode& anonInode() { return anonInode_; }

 private:
  bool hasIommu() const REQUIRES(groupLock_) {
    return container_ != nullptr || iommufd_ != nullptr;
  }
  // vfio_group_detach_container() and the iommufd's put.
  void detach() REQUIRES(groupLock_);
  // Opens `dev` for a new device file; the caller holds group_lock.
  Result<std::shared_ptr<VfioDeviceFile>> openDevice(VfioDevice& dev) REQUIRES(groupLock_);

  const int id_;
  Inode& anonInode_;
  std::vector<VfioDevice*> devices_;
  Mutex groupLock_{kVfioGroupLockClass};
  // References to the open group file: the fd's and one per device file.
  int fileRefs_ GUARDED_BY(groupLock_) = 0;
  std::shared_ptr<VfioContainer> container_ GUARDED_BY(groupLock_);
  std::shared_ptr<IommufdCtx> iommufd_ GUARDED_BY(groupLock_);
  // Device files holding the container (container_users less the group's own).
  int deviceFiles_ GUARDED_BY(groupLock_) = 0;
  // Devices opened through an iommufd: the context (df->iommufd) and the
  // device's object id in it, until the last close unbinds it.
  struct CompatBinding {
    std::shared_ptr<IommufdCtx> ictx;
    uint32_t devid = 0;
  };
  std::map<VfioDevice*, CompatBinding> compatBound_ GUARDED_BY(groupLock_);
};

}  // namespace vfiomm
