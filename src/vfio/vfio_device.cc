#include "vfio/vfio_device.h"

#include "fs/vfio_fs.h"

namespace vfiomm {

Result<std::unique_ptr<VfioDevice>> VfioDevice::create(PciDevice& pdev, Machine& machine,
                                                       MmProfile profile, DesignKind design,
                                                       DesignOptions options) {
  auto inode = VfioFs::instance().allocInode();
  if (!inode) return fail(inode.error());
  std::unique_ptr<VfioDevice> dev(new VfioDevice(pdev, *inode));
  dev->pci_ = std::make_unique<VfioPciCoreDevice>(pdev, machine, dev->inode_, std::move(profile),
                                                  design, options);
  return dev;
}

VfioDevice::VfioDevice(PciDevice& pdev, std::shared_ptr<Inode> inode)
    : pdev_(pdev), inode_(std::move(inode)) {}

VfioDevice::~VfioDevice() {
  pci_.reset();
  VfioFs::instance().releaseInode(inode_);
}

Status VfioDevice::open(bool viaGroup) {
  MutexGuard g(openLock_);
  if (viaGroup && cdevOpen_) return fail(Errno::kEBUSY);
  if (openCount_ == 0) {
    if (auto st = pci_->enable(); !st) return st;
  }
  ++openCount_;
  return ok();
}

void VfioDevice::close() {
  MutexGuard g(openLock_);
  if (--openCount_ == 0) {
    pci_->disable();
    ++closeDeviceCalls_;
  }
}

bool VfioDevice::claimCdev() {
  MutexGuard g(openLock_);
  if (cdevOpen_ || openCount_ > 0) return false;
  cdevOpen_ = true;
  return true;
}

void VfioDevice::releaseCdev() {
  MutexGuard g(openLock_);
  cdevOpen_ = false;
}

int VfioDevice::openCount() {
  MutexGuard g(openLock_);
  return openCount_;
}

}  // namespace vfiomm
