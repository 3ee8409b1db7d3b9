#include "vfio/vfio_device.h"

#include "fs/vfio_fs.h"

namespace vfiomm {

Result<std::unique_ptr<VfioDevice>> VfioDevice::create(PciDevice& pdev, Machine& machine,
                                                       VfioFs& fs, VfioProfile profile,
                                                       DesignKind design, DesignOptions options) {
  auto inode = fs.allocInode();
  if (!inode) return fail(inode.error());
  std::unique_ptr<VfioDevice> dev(new VfioDevice(pdev, fs, *inode));
  dev->pci_ =
      std::make_unique<VfioPciCoreDevice>(pdev, machine, dev->inode_, profile, design, options);
  dev->pci_->bind();
  return dev;
}

VfioDevice::VfioDevice(PciDevice& pdev, VfioFs& fs, std::shared_ptr<Inode> inode)
    : pdev_(pdev), fs_(fs), inode_(std::move(inode)) {}

VfioDevice::~VfioDevice() {
  pci_.reset();
  fs_.releaseInode(inode_);
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
