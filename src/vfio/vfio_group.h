// VfioGroup: the legacy group path (/dev/vfio/N). Once attached to a
// container, VFIO_GROUP_GET_DEVICE_FD opens a device of the group and hands
// out an anon-inode file whose f_mapping is replaced by the device's.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "fs/inode.h"
#include "sync/mutex.h"

namespace vfiomm {

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
  // VFIO_GROUP_SET_CONTAINER (with an IOMMU set on the container).
  void setContainer(bool set) EXCLUDES(groupLock_);
  // VFIO_GROUP_GET_STATUS: VIABLE | CONTAINER_SET.
  bool hasContainer() EXCLUDES(groupLock_);

  // VFIO_GROUP_GET_DEVICE_FD: group_lock held across the device's open, as
  // vfio_df_group_open() holds it (group_lock -> dev_set->lock).
  Result<std::shared_ptr<VfioDeviceFile>> getDeviceFd(const std::string& name)
      EXCLUDES(groupLock_);

  // The kernel's single anon inode every group-path file has as f_inode
  // (anon_inode_getfile): on the anon-inode superblock, boot dependent in
  // Linux (st_dev 0:14 and a low inode number here).
  Inode& anonInode() { return anonInode_; }

 private:
  const int id_;
  Inode& anonInode_;
  std::vector<VfioDevice*> devices_;
  Mutex groupLock_{kVfioGroupLockClass};
  bool hasContainer_ GUARDED_BY(groupLock_) = false;
};

}  // namespace vfiomm
