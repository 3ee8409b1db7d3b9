// IommufdCtx: what an open /dev/iommu holds (struct iommufd_ctx,
// drivers/iommu/iommufd/main.c): its objects by id and the native ioctls
// on them (dma-mapping.md §3.1), and the compat IOAS that the vfio
// container ioctls on the same fd use (IommufdVfioCompat, §3.3). The
// objects modelled are IOASes and their automatic paging HW page tables;
// devices bound through a vfio cdev take an id from the same space.
// Attaching a device to an IOAS puts it on the IOAS's automatic HWPT — a
// paging domain that mirrors the IOAS, shared by every device attached
// there (all of the model's devices sit behind one compatible IOMMU) —
// made by the first such attach and gone with the last detach
// (iommufd_device_auto_get_domain).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "base/result.h"
#include "iommufd/io_pagetable.h"
#include "sync/mutex.h"
#include "sync/spin_lock.h"

namespace vfiomm {

class DmaBuf;
class File;
class Iommu;
class IommuDomain;
class Mm;
class PciDevice;
class SystemRam;

// ictx->objects' xa_lock.
inline const LockClass kIommufdObjectsLockClass{"&ictx->objects.xa_lock"};
// igroup->lock: serialises a device's attach and detach.
inline const LockClass kIommufdDeviceLockClass{"&igroup->lock"};

// What an iommufd ioctl finds through the calling task.
struct IommufdCaller {
  IoptSource source;  // whose pages IOAS_MAP uses, and whom their pins charge
  // dma_buf_get(fd): -EBADF when `fd` is not open, -EINVAL when its file
  // is not a dma-buf.
  std::function<Result<std::shared_ptr<DmaBuf>>(int fd)> dmaBufGet;
  // fget(fd): -EBADF when `fd` is not open; null for an open file the
  // model keeps no File for (a container, an eventfd: no pages to pin).
  std::function<Result<std::shared_ptr<File>>(int fd)> fileGet;
};

class IommufdCtx {
 public:
  // `mapFile`: the kernel has IOMMU_IOAS_MAP_FILE (v6.13, the
  // iommufd_map_file switch). `dmabufMap`: vfio-pci's side of the dma-buf
  // import, empty on a kernel without it.
  IommufdCtx(int id, Iommu& iommu, SystemRam& ram, bool mapFile = true,
             DmaBufIommufdMap dmabufMap = {});
  IommufdCtx(const IommufdCtx&) = delete;
  IommufdCtx& operator=(const IommufdCtx&) = delete;

  int id() const { return id_; }
  // A fresh object id (xa_alloc), for an object created elsewhere.
  uint32_t allocObjectId() { return nextObjectId_.fetch_add(1, std::memory_order_relaxed); }
  // iommufd_fops_ioctl(): DESTROY, IOAS_ALLOC, IOAS_MAP, IOAS_MAP_FILE
  // (from v6.13), IOAS_UNMAP; -ENOTTY otherwise.
  Result<long> ioctl(unsigned long request, void* arg, const IommufdCaller& caller) EXCLUDES(lock_);
  // iommufd_get_ioas(): the IOAS `id`, or nullptr.
  std::shared_ptr<IoPagetable> ioas(uint32_t id) EXCLUDES(lock_);

  // iommufd_vfio_compat_ioas_create(): the compat IOAS (ictx->vfio_ioas)
  // the vfio container ioctls act on, allocated unless one is set and
  // still alive. It is an ordinary IOAS otherwise (IOMMU_DESTROY works).
  Status compatIoasCreate() EXCLUDES(lock_);
  // get_compat_ioas(): the compat IOAS, or nullptr (-ENODEV to callers).
  std::shared_ptr<IoPagetable> compatIoas() EXCLUDES(lock_);
  // A group-path open of a device on an iommufd: the device is bound
  // (a new object id, returned) and attached to the compat IOAS
  // (vfio_iommufd_compat_attach_ioas()); -ENODEV without one.
  Result<uint32_t> compatAttachDevice(const PciDevice& pdev) EXCLUDES(lock_, deviceLock_);

  // iommufd_device_attach() of device `devid` to `ptId`, an IOAS or one of
  // its HWPTs; returns the HWPT the device is now on (the pt_id the ioctl
  // copies back). The IOAS's automatic HWPT is reused; the first attach
  // makes it, and its new domain gets the IOAS's areas, pinning their
  // pages now (-EFAULT for a BAR vaddr, §3.2), before it translates the
  // device's DMA. -ENOENT: no such IOAS or HWPT. An attached device moves
  // over only if the new attach works.
  Result<uint32_t> attachDevice(uint32_t devid, const PciDevice& pdev, uint32_t ptId)
      EXCLUDES(deviceLock_, lock_);
  // iommufd_device_detach(): the device's DMA is blocked; the last device
  // off an automatic HWPT takes it away with its domain.
  void detachDevice(uint32_t devid) EXCLUDES(deviceLock_);

 private:
  Result<long> destroy(void* arg) EXCLUDES(lock_);
  Result<long> ioasAlloc(void* arg) EXCLUDES(lock_);
  Result<long> ioasMap(void* arg, const IoptSource& source);
  // IOMMU_IOAS_MAP_FILE: a dma-buf fd (v6.19, §4.3) or any other file,
  // whose pages are pinned as a memfd's (v6.13).
  Result<long> ioasMapFile(void* arg, const IommufdCaller& caller);
  Result<long> ioasUnmap(void* arg);

  // struct iommufd_hwpt_paging with auto_domain set.
  struct Hwpt {
    uint32_t ioasId = 0;
    std::shared_ptr<IoPagetable> iopt;
    std::shared_ptr<IommuDomain> domain;
    unsigned users = 0;  // devices attached
  };
  struct Attachment {
    const PciDevice* pdev = nullptr;
    uint32_t hwptId = 0;
  };

  // The HWPT a new attach to `ptId` lands on, made if the IOAS has none.
  Result<uint32_t> hwptFor(uint32_t ptId) REQUIRES(deviceLock_) EXCLUDES(lock_);
  // One device fewer on `hwptId`; the last one takes it away.
  void putHwpt(uint32_t hwptId) REQUIRES(deviceLock_);
  bool isHwpt(uint32_t id) EXCLUDES(deviceLock_);

  const int id_;
  Iommu& iommu_;
  SystemRam& ram_;
  const bool mapFile_;
  const DmaBufIommufdMap dmabufMap_;
  std::atomic<uint32_t> nextObjectId_{1};
  SpinLock lock_{kIommufdObjectsLockClass};
  std::map<uint32_t, std::shared_ptr<IoPagetable>> ioases_ GUARDED_BY(lock_);
  uint32_t compatIoasId_ GUARDED_BY(lock_) = 0;  // ictx->vfio_ioas; 0: none
  // igroup->lock; an attach finds its IOAS under it (objects.xa_lock).
  Mutex deviceLock_ ACQUIRED_BEFORE(lock_){kIommufdDeviceLockClass};
  std::map<uint32_t, Hwpt> hwpts_ GUARDED_BY(deviceLock_);           // by object id
  std::map<uint32_t, Attachment> attached_ GUARDED_BY(deviceLock_);  // by devid
};

}  // namespace vfiomm
