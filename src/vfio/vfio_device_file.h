// The file a user gets for a vfio device: through the group path
// (VFIO_GROUP_GET_DEVICE_FD: an anon-inode "[vfio-device]" file, O_RDWR) or
// the cdev path (/dev/vfio/devices/vfioN, usable after
// VFIO_DEVICE_BIND_IOMMUFD). Either way f_mapping is the device inode's
// address space, so one zap reaches every mapping (vfio-bar-mapping.md §13).
// A VMA holds the file, so the device is only closed when the last fd and
// the last mapping are gone.
#pragma once

#include <memory>

#include "mm/file.h"
#include "vfio/vfio_device_set.h"

namespace vfiomm {

class Inode;
class IommufdCtx;
class VfioDevice;

enum class VfioOpenPath { kGroup, kCdev };

class VfioDeviceFile : public File {
 public:
  // `fInode` is the file's own inode (the shared anon inode of the group
  // path, or the char device's); `device` must already be opened for the
  // group path.
  VfioDeviceFile(VfioDevice& device, VfioOpenPath path, Inode& fInode, bool readable,
                 bool writable);
  ~VfioDeviceFile() override;  // the last fput: vfio_df_close()

  AddressSpace* mapping() const override;  // file->f_mapping
  Inode& fInode() const { return fInode_; }
  bool readable() const override { return readable_; }
  bool writable() const override { return writable_; }
  Status mmap(Vma& vma) override;
  // The anon-inode superblock is SB_I_NOEXEC with anon_inode_noexec
  // (vfio-uapi.md §9); /dev is not noexec in the model.
  bool pathNoexec() const override;

  VfioDevice& device() const { return device_; }
  VfioOpenPath path() const { return path_; }
  // df->access_granted: group path at open; cdev path once bound.
  bool accessGranted() const { return accessGranted_; }
  // VFIO_DEVICE_BIND_IOMMUFD for an unbound cdev file (the caller checks
  // that first, as the kernel does before it looks the iommufd up):
  // `devid` is the device's id in the iommufd context `ictx`, which the
  // file holds until it is released (df->iommufd).
  Status bindIommufd(std::shared_ptr<IommufdCtx> ictx, uint32_t devid);
  // vfio_device_fops_unl_ioctl() after the bind: the access check, the
  // core's VFIO_DEVICE_FEATURE and hot reset, then vfio-pci's ioctls. The
  // result is the ioctl's return value.
  Result<long> ioctl(unsigned long request, void* arg, const VfioIoctlCaller& caller);

 private:
  VfioDevice& device_;
  const VfioOpenPath path_;
  Inode& fInode_;
  const bool readable_;
  const bool writable_;
  bool accessGranted_;
  std::shared_ptr<IommufdCtx> iommufd_;  // cdev path, once bound

  // The ioctl itself, with the device resumed.
  Result<long> dispatch(unsigned long request, void* arg, const VfioIoctlCaller& caller);
  Result<long> featureIoctl(void* arg, const VfioIoctlCaller& caller);
  // VFIO_DEVICE_ATTACH_IOMMUFD_PT / DETACH (cdev files only). PASID
  // attach is not modelled: its flag is refused, as before v6.15.
  Result<long> attachPtIoctl(void* arg);
  Result<long> detachPtIoctl(void* arg);
  HotResetOwner hotResetOwner() const;
};

}  // namespace vfiomm
