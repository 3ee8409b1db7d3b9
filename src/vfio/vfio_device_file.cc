#include "vfio/vfio_device_file.h"

#include "vfio/vfio_device.h"

namespace vfiomm {

VfioDeviceFile::VfioDeviceFile(VfioDevice& device, VfioOpenPath path, Inode& fInode,
                               bool readable, bool writable)
    : device_(device),
      path_(path),
      fInode_(fInode),
      readable_(readable),
      writable_(writable),
      accessGranted_(path == VfioOpenPath::kGroup) {}

VfioDeviceFile::~VfioDeviceFile() {
  if (accessGranted_) device_.close();
  if (path_ == VfioOpenPath::kCdev) {
    device_.setBoundIommufd(0);
    device_.setCdevOpen(false);
  }
}

AddressSpace* VfioDeviceFile::mapping() const { return &device_.inode().mapping(); }

Status VfioDeviceFile::mmap(Vma& vma) {
  // vfio_device_fops_mmap(): an unbound cdev file cannot map (MMAP-07).
  if (!accessGranted_) return fail(Errno::kEINVAL);
  return device_.pci().mmap(vma);
}

Status VfioDeviceFile::bindIommufd(int ictx) {
  if (path_ != VfioOpenPath::kCdev || accessGranted_) return fail(Errno::kEINVAL);
  if (auto st = device_.open(); !st) return st;
  device_.setBoundIommufd(ictx);
  accessGranted_ = true;
  return ok();
}

}  // namespace vfiomm
