// VfioGroup: the legacy group path (/dev/vfio/N). Once attached to a
// container, VFIO_GROUP_GET_DEVICE_FD opens a device of the group and hands
// out an anon-inode file whose f_mapping is replaced by the device's.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "fs/inode.h"

namespace vfiomm {

class VfioDevice;
class VfioDeviceFile;

class VfioGroup {
 public:
  explicit VfioGroup(int id) : id_(id) {}

  int id() const { return id_; }
  void addDevice(VfioDevice& device);
  const std::vector<VfioDevice*>& devices() const { return devices_; }
  // VFIO_GROUP_SET_CONTAINER (with an IOMMU set on the container).
  void setContainer(bool set) { hasContainer_ = set; }
  bool hasContainer() const { return hasContainer_; }

  // VFIO_GROUP_GET_DEVICE_FD.
  Result<std::shared_ptr<VfioDeviceFile>> getDeviceFd(const std::string& name);

  // The single system-wide anon inode every group-path file has as f_inode.
  static Inode& anonInode();

 private:
  const int id_;
  std::vector<VfioDevice*> devices_;
  bool hasContainer_ = false;
};

}  // namespace vfiomm
