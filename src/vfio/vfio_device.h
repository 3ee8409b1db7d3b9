// VfioDevice models struct vfio_device (drivers/vfio/vfio_main.c): the
// device's inode on the vfio pseudo fs (allocated with the device, dropped
// at its release), the open count that runs open_device/close_device, its
// group, its dev_set, and the vfio-pci core device behind it.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "fs/inode.h"
#include "fs/vfio_fs.h"
#include "sync/mutex.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

class VfioDeviceSet;
class VfioGroup;

inline const LockClass kVfioDeviceLockClass{"&device->dev_set->lock"};

class VfioDevice {
 public:
  // vfio_alloc_device(): fails when the inode cannot be allocated (FS-02).
  // The inode comes from `fs`, the kernel's vfio pseudo filesystem.
  static Result<std::unique_ptr<VfioDevice>> create(PciDevice& pdev, Machine& machine, VfioFs& fs,
                                                    VfioProfile profile, DesignKind design,
                                                    DesignOptions options = {});
  ~VfioDevice();  // the release callback: iput + simple_release_fs
  VfioDevice(const VfioDevice&) = delete;
  VfioDevice& operator=(const VfioDevice&) = delete;

  const std::string& name() const { return pdev_.name(); }
  Inode& inode() { return *inode_; }
  VfioPciCoreDevice& pci() { return *pci_; }
  PciDevice& pdev() { return pdev_; }
  const PciDevice& pdev() const { return pdev_; }

  // vfio_df_open()/vfio_df_close(): the first open enables the device, the
  // last close disables it (close_device). A group open is refused
  // (-EBUSY) while the cdev is open, checked under the same lock.
  Status open(bool viaGroup = false);
  void close();
  int openCount();
  uint64_t closeDeviceCalls() const { return closeDeviceCalls_; }

  VfioGroup* group() const { return group_; }
  void setGroup(VfioGroup* group) { group_ = group; }
  VfioDeviceSet* devSet() const { return devSet_; }
  void setDevSet(VfioDeviceSet* set) { devSet_ = set; }
  // The iommufd context a cdev open bound this device to (0: none).
  int boundIommufd() const { return boundIommufd_; }
  void setBoundIommufd(int ictx) { boundIommufd_ = ictx; }
  // Its object id in that iommufd (vfio_device_bind_iommufd.out_devid).
  uint32_t boundDevid() const { return boundDevid_; }
  void setBoundDevid(uint32_t devid) { boundDevid_ = devid; }
  // The cdev path allows one open at a time, and none while the group path
  // has the device open: false (-EBUSY) then. Atomic against open().
  bool claimCdev();
  void releaseCdev();

 private:
  VfioDevice(PciDevice& pdev, VfioFs& fs, std::shared_ptr<Inode> inode);

  PciDevice& pdev_;
  VfioFs& fs_;
  std::shared_ptr<Inode> inode_;
  std::unique_ptr<VfioPciCoreDevice> pci_;
  Mutex openLock_{kVfioDeviceLockClass};
  int openCount_ GUARDED_BY(openLock_) = 0;
  uint64_t closeDeviceCalls_ = 0;
  VfioGroup* group_ = nullptr;
  VfioDeviceSet* devSet_ = nullptr;
  int boundIommufd_ = 0;
  uint32_t boundDevid_ = 0;
  bool cdevOpen_ GUARDED_BY(openLock_) = false;
};

}  // namespace vfiomm
