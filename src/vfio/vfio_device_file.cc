#include "vfio/vfio_device_file.h"

#include "abi/vfio.h"
#include "base/user_copy.h"
#include "iommufd/iommufd_ctx.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_group.h"

namespace vfiomm {

VfioDeviceFile::VfioDeviceFile(VfioDevice& device, VfioOpenPath path, Inode& fInode, bool readable,
                               bool writable)
    : device_(device),
      path_(path),
      fInode_(fInode),
      readable_(readable),
      writable_(writable),
      accessGranted_(path == VfioOpenPath::kGroup) {}

VfioDeviceFile::~VfioDeviceFile() {
  // vfio_df_unbind_iommufd(): the device leaves its IOAS before it closes.
  if (iommufd_ != nullptr) iommufd_->detachDevice(device_.boundDevid());
  if (accessGranted_) device_.close();
  // The group file this one held, and the container through it.
  if (path_ == VfioOpenPath::kGroup) device_.group()->deviceFileReleased(device_);
  if (path_ == VfioOpenPath::kCdev) {
    device_.setBoundIommufd(0);
    device_.releaseCdev();
  }
}

bool VfioDeviceFile::pathNoexec() const {
  return path_ == VfioOpenPath::kGroup && device_.pci().profile().anonInodeNoexec;
}

AddressSpace* VfioDeviceFile::mapping() const { return &device_.inode().mapping(); }

Status VfioDeviceFile::mmap(Vma& vma) {
  // vfio_device_fops_mmap(): an unbound cdev file cannot map (MMAP-07).
  if (!accessGranted_) return fail(Errno::kEINVAL);
  return device_.pci().mmap(vma);
}

Status VfioDeviceFile::bindIommufd(std::shared_ptr<IommufdCtx> ictx, uint32_t devid) {
  if (auto st = device_.open(); !st) return st;
  device_.setBoundIommufd(ictx->id());
  device_.setBoundDevid(devid);
  iommufd_ = std::move(ictx);
  accessGranted_ = true;
  return ok();
}

HotResetOwner VfioDeviceFile::hotResetOwner() const {
  HotResetOwner owner;
  owner.cdev = path_ == VfioOpenPath::kCdev;
  owner.iommufd = device_.boundIommufd();
  owner.profile = device_.pci().profile();
  return owner;
}

Result<long> VfioDeviceFile::ioctl(unsigned long request, void* arg,
                                   const VfioIoctlCaller& caller) {
  // A cdev file not yet bound answers nothing else (vfio-uapi.md §1).
  if (!accessGranted_) return fail(Errno::kEINVAL);
  // vfio_device_fops_unl_ioctl(): every ioctl runs with the device resumed.
  device_.pci().pmRuntimeGet();
  auto done = dispatch(request, arg, caller);
  device_.pci().pmRuntimePut();
  return done;
}

Result<long> VfioDeviceFile::dispatch(unsigned long request, void* arg,
                                      const VfioIoctlCaller& caller) {
  if (path_ == VfioOpenPath::kCdev && request == uapi::VFIO_DEVICE_ATTACH_IOMMUFD_PT)
    return attachPtIoctl(arg);
  if (path_ == VfioOpenPath::kCdev && request == uapi::VFIO_DEVICE_DETACH_IOMMUFD_PT)
    return detachPtIoctl(arg);
  switch (request) {
    case uapi::VFIO_DEVICE_FEATURE: return featureIoctl(arg, caller);
    case uapi::VFIO_DEVICE_GET_PCI_HOT_RESET_INFO:
      return device_.devSet()->hotResetInfoIoctl(device_, hotResetOwner(), arg);
    case uapi::VFIO_DEVICE_PCI_HOT_RESET:
      return device_.devSet()->hotResetIoctl(device_, hotResetOwner(), arg, caller);
    default: return device_.pci().ioctl(request, arg, caller);
  }
}

Result<long> VfioDeviceFile::attachPtIoctl(void* arg) {
  uapi::vfio_device_attach_iommufd_pt attach;
  constexpr uint32_t minsz = offsetof(uapi::vfio_device_attach_iommufd_pt, pasid);
  if (auto st = copyFromUser(&attach, arg, minsz); !st) return fail(st.error());
  if (attach.argsz < minsz || attach.flags != 0) return fail(Errno::kEINVAL);
  Result<uint32_t> hwpt =
      iommufd_->attachDevice(device_.boundDevid(), device_.pdev(), attach.pt_id);
  if (!hwpt) return fail(hwpt.error());
  // The HWPT the device landed on, for the caller to name later.
  attach.pt_id = *hwpt;
  if (auto st = copyToUser(arg, &attach, minsz); !st) return fail(st.error());
  return 0;
}

Result<long> VfioDeviceFile::detachPtIoctl(void* arg) {
  uapi::vfio_device_detach_iommufd_pt detach;
  constexpr uint32_t minsz = offsetof(uapi::vfio_device_detach_iommufd_pt, pasid);
  if (auto st = copyFromUser(&detach, arg, minsz); !st) return fail(st.error());
  if (detach.argsz < minsz || detach.flags != 0) return fail(Errno::kEINVAL);
  iommufd_->detachDevice(device_.boundDevid());
  return 0;
}

// vfio_ioctl_device_feature(): the core's checks, the features the core
// owns (migration and dirty logging: plain vfio-pci has neither), then the
// driver (vfio-uapi.md §6.1).
Result<long> VfioDeviceFile::featureIoctl(void* arg, const VfioIoctlCaller& caller) {
  constexpr uint32_t minsz = sizeof(uapi::vfio_device_feature);
  uapi::vfio_device_feature feature;
  if (auto st = copyFromUser(&feature, arg, minsz); !st) return fail(st.error());
  if (feature.argsz < minsz) return fail(Errno::kEINVAL);
  constexpr uint32_t known = uapi::VFIO_DEVICE_FEATURE_MASK | uapi::VFIO_DEVICE_FEATURE_GET |
                             uapi::VFIO_DEVICE_FEATURE_SET | uapi::VFIO_DEVICE_FEATURE_PROBE;
  if ((feature.flags & ~known) != 0) return fail(Errno::kEINVAL);
  constexpr uint32_t getSet = uapi::VFIO_DEVICE_FEATURE_GET | uapi::VFIO_DEVICE_FEATURE_SET;
  if (!(feature.flags & uapi::VFIO_DEVICE_FEATURE_PROBE) && (feature.flags & getSet) == getSet)
    return fail(Errno::kEINVAL);
  switch (feature.flags & uapi::VFIO_DEVICE_FEATURE_MASK) {
    case uapi::VFIO_DEVICE_FEATURE_MIGRATION:
    case uapi::VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
    case uapi::VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
    case uapi::VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
    case uapi::VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
    case uapi::VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: return fail(Errno::kENOTTY);
    default:
      return device_.pci().feature(feature.flags, static_cast<uint8_t*>(arg) + minsz,
                                   feature.argsz - minsz, caller);
  }
}

}  // namespace vfiomm
