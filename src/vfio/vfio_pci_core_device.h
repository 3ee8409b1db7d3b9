// VfioPciCoreDevice models struct vfio_pci_core_device: the per-device state
// behind a vfio-pci file — regions, the virtual config space, memory_lock and
// the memory-enable state, the mmap handler, BAR access through the file,
// resets — with the mapping design as a strategy (mapping_design.h).
// vfio-bar-mapping.md §1-§10 is the behaviour; conformance IDs are cited
// where each rule is implemented.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/addr.h"
#include "base/result.h"
#include "fs/inode.h"
#include "pci/pci_device.h"
#include "sync/rw_semaphore.h"
#include "vfio/mapping_design.h"
#include "vfio/vfio_pci_config.h"
#include "vfio/vfio_pci_regions.h"
#include "vfio/vfio_profile.h"

namespace vfiomm {

class DmaBuf;
class Machine;
class Vma;
class VfioPciDmaBuf;

inline const LockClass kVfioMemoryLockClass{"&vdev->memory_lock"};

class Eventfd;
class VfioGroup;
class VfioInfoCap;

struct RegionInfo {
  uint32_t index = 0;
  uint32_t flags = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
};

// A device-specific region (index >= 9), as variant drivers add them.
struct DeviceRegion {
  uint64_t size = 0;
  uint32_t flags = 0;
  std::function<Status(Vma&)> mmap;  // its own mmap op, if any
  // Its VFIO_REGION_INFO_CAP_TYPE.
  uint32_t type = 0;
  uint32_t subtype = 0;
  // What its add_capability op appends: a sparse-mmap capability with
  // these (offset, size) areas when not empty.
  std::vector<std::pair<uint64_t, uint64_t>> sparseAreas;
};

// What a device ioctl finds through the calling task (fdget() on its fd
// table), for the arguments that are file descriptors.
struct VfioIoctlCaller {
  // fdget() of a hot-reset group fd: -EBADF when `fd` is not open, -EINVAL
  // when it is not a vfio group file.
  std::function<Result<const VfioGroup*>(int fd)> groupFromFd;
  // eventfd_ctx_fdget(): -EBADF when `fd` is not open, -EINVAL when it is
  // not an eventfd.
  std::function<Result<std::shared_ptr<Eventfd>>(int fd)> eventfdFromFd;
  // dma_buf_fd(): a new descriptor for an exported buffer, or -EMFILE.
  std::function<Result<int>(std::shared_ptr<DmaBuf> dmabuf)> dmaBufFd;
  // dma_buf_get(): -EBADF when `fd` is not open, -EINVAL when it is not a
  // dma-buf.
  std::function<Result<std::shared_ptr<DmaBuf>>(int fd)> dmaBufFromFd;
};

class VfioPciCoreDevice {
 public:
  VfioPciCoreDevice(PciDevice& pdev, Machine& machine, std::shared_ptr<Inode> inode,
                    VfioProfile profile, DesignKind design, DesignOptions options = {});
  ~VfioPciCoreDevice();
  VfioPciCoreDevice(const VfioPciCoreDevice&) = delete;
  VfioPciCoreDevice& operator=(const VfioPciCoreDevice&) = delete;

  // vfio_pci_core_register_device()'s power part, once, when vfio-pci binds.
  void bind() EXCLUDES(memoryLock_);
  // vfio_pci_core_enable() at the first open / _disable() at the last close.
  Status enable();
  void disable();

  // --- the file's operations -----------------------------------------------
  // vfio_pci_core_ioctl(): the device ioctls vfio-pci answers itself, on
  // the caller's argument (vfio_pci_core_ioctl.cc). The result is the
  // ioctl's return value.
  Result<long> ioctl(unsigned long request, void* arg, const VfioIoctlCaller& caller);
  // vfio_pci_core_ioctl_feature(): a VFIO_DEVICE_FEATURE the core passed on,
  // with the payload after the 8-byte header and its size (argsz - 8).
  Result<long> feature(uint32_t flags, void* payload, uint32_t payloadSize,
                       const VfioIoctlCaller& caller);
  Result<RegionInfo> getRegionInfo(uint32_t index);  // VFIO_DEVICE_GET_REGION_INFO
  // vfio_pci_rw(): returns the bytes transferred.
  Result<uint64_t> rw(uint8_t* buf, uint64_t count, uint64_t pos, bool write);
  Status mmap(Vma& vma);  // vfio_pci_core_mmap()
  Status reset();         // VFIO_DEVICE_RESET
  // VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY(_WITH_WAKEUP): `wakeup` is
  // signalled when the device leaves low power by itself.
  Status lowPowerEntry(std::shared_ptr<Eventfd> wakeup = nullptr);
  Status lowPowerExit();  // VFIO_DEVICE_FEATURE_LOW_POWER_EXIT
  // The runtime-PM usage count around an ioctl or a pread/pwrite
  // (vfio_device_pm_runtime_get/put, vfio_pci_rw): a suspended device is
  // resumed first, and once user-requested low power left the count at
  // zero the device suspends again when the call returns.
  void pmRuntimeGet() EXCLUDES(memoryLock_);
  void pmRuntimePut() EXCLUDES(memoryLock_);
  // The get of a caller that holds dev_set->lock: a refill the resume made
  // due (upWriteMemoryLockDeferRefill) is the caller's to run afterwards.
  bool pmRuntimeGetDeferRefill() EXCLUDES(memoryLock_);
  // The device's power/control in sysfs: vfio-pci allows runtime PM when
  // it binds (pm_runtime_allow); "on" forbids it and resumes the device.
  void setRuntimePmAllowed(bool allowed) EXCLUDES(memoryLock_);
  bool runtimeSuspended() const { return runtimeSuspended_.load(std::memory_order_acquire); }
  // vdev->reset_works: whether the reset at the first open succeeded.
  bool resetWorks() const { return resetWorks_.load(std::memory_order_acquire); }
  // vdev->nointx: INTx hidden from the user (pin 0) and kept disabled.
  // Set at the first open, read after it.
  bool nointx() const { return nointx_; }
  // vdev->has_dyn_msix: MSI-X vectors can be added while enabled, where
  // the platform allocates them dynamically (msix_dynamic) and the device
  // has MSI-X at all.
  bool hasDynMsix() const { return profile_.msixDynamic && pdev_.msixCapOffset().has_value(); }

  // --- what the designs and the dev_set use --------------------------------
  RwSemaphore& memoryLock() RETURN_CAPABILITY(memoryLock_) { return memoryLock_; }
  // __vfio_pci_memory_enabled(): powered (< D3hot) and virtual MEM set (or
  // a device without a MEM bit).
  bool memoryEnabledLocked() REQUIRES_SHARED(memoryLock_);
  // The fault handlers also refuse while user-requested low power is on.
  bool faultAllowedLocked() REQUIRES_SHARED(memoryLock_) {
    return memoryEnabledLocked() && !pmRuntimeEngaged_;
  }
  // vma_to_pfn(): the pfn that backs vma->vm_start.
  Pfn vmaToPfn(const Vma& vma) const;
  AddressSpace& mapping() { return inode_->mapping(); }
  PciDevice& pdev() { return pdev_; }
  Machine& machine() { return machine_; }
  const VfioProfile& profile() const { return profile_; }
  MappingDesign& design() { return *design_; }
  // What the design was made with; the seeded bugs that live outside its
  // policies (the PMCSR write, the dev_set's hot reset) read it here.
  const DesignOptions& designOptions() const { return options_; }
  // vfio_pci_zap_and_down_write_memory_lock(), as the design does it.
  void zapAndDownWriteMemoryLock() ACQUIRE(memoryLock_);
  // vfio_pci_set_power_state(): the PCI core's transition, with the
  // configuration of a NoSoftRst-clear function (needs_pm_restore) saved on
  // the way into D3hot and written back on the way out to D0 (UAPI-27,
  // issue 17 finding 1). The config region's PMCSR write and every reset
  // path (VFIO_DEVICE_RESET, hot reset) bring the device to D0 through it.
  Status setPowerStateLocked(PciPowerState state) REQUIRES(memoryLock_);
  // vconfig's COMMAND, as the config region wrote it: its MEM bit is what
  // memoryEnabledLocked() tests.
  void setVirtualCommandLocked(uint16_t cmd) REQUIRES(memoryLock_) { vcmd_ = cmd; }
  // vfio_pci_dma_buf_move(vdev, true): every zap trigger revokes the
  // device's dma-bufs right after the zap (dma-mapping.md §4.2).
  void revokeDmaBufsLocked() REQUIRES(memoryLock_);
  // The paths that restore access un-revoke them, but only when memory is
  // enabled afterwards.
  void restoreDmaBufsLocked() REQUIRES(memoryLock_);
  // vdev->dmabufs, kept by VfioPciDmaBuf.
  std::vector<VfioPciDmaBuf*>& dmaBufsLocked() REQUIRES(memoryLock_) { return dmabufs_; }
  // The hot-reset step: trylock + zap; false with nothing held.
  bool tryZapAndDownWriteMemoryLock() TRY_ACQUIRE(true, memoryLock_);
  // down_write(&vdev->memory_lock), counted (MEM-01/MEM-02 observe it).
  void downWriteMemoryLock() ACQUIRE(memoryLock_);
  bool downWriteTrylockMemoryLock() TRY_ACQUIRE(true, memoryLock_);
  // A design zapped the BARs while holding memory_lock for write: mappings
  // are gone and will be wanted again once memory is enabled.
  void noteZapLocked() REQUIRES(memoryLock_) { refillPending_ = true; }
  // up_write(&vdev->memory_lock) after a state change. When mappings were
  // zapped and memory is usable again, the design's memoryEnabled() hook
  // runs after the release, outside every lock.
  void upWriteMemoryLock() RELEASE(memoryLock_);
  // The same, for a caller that still holds other devices' memory_locks
  // (hot reset): instead of running the hook it returns whether the hook is
  // due, and the caller runs design().memoryEnabled() once it holds nothing.
  bool upWriteMemoryLockDeferRefill() RELEASE(memoryLock_);

  // --- state for tests and monitors ------------------------------------------
  uint16_t virtualCommand();
  bool pmRuntimeEngaged();
  uint64_t memoryLockWriteCount() const { return memoryLockWrites_.load(); }
  void addDeviceRegion(DeviceRegion region);
  // Another driver owns this BAR's resource (pci_request_selected_regions
  // then fails with -EBUSY: MMAP-08).
  void claimBarElsewhere(unsigned bar);
  // Every device access of pread/pwrite, in order (RW-04, RW-05).
  using AccessTrace =
      std::function<void(uint32_t index, uint64_t offset, unsigned size, bool write)>;
  void setAccessTrace(AccessTrace trace) { accessTrace_ = std::move(trace); }

 private:
  // rw() once the device is powered.
  Result<uint64_t> rwActive(uint8_t* buf, uint64_t count, uint64_t pos, bool write);
  // BARs and the ROM (vfio_pci_bar_rw).
  Result<uint64_t> barRw(uint32_t index, uint8_t* buf, uint64_t count, uint64_t off, bool write);
  Result<uint64_t> doIoRw(uint32_t index, uint8_t* buf, uint64_t count, uint64_t off, bool write,
                          uint64_t xStart, uint64_t xEnd);
  Status barAccess(uint32_t index, uint64_t off, unsigned size, uint64_t* value, bool write);
  // One access of an I/O-port BAR (an 8-byte one is two of 4 bytes).
  Status ioPortAccess(uint32_t index, uint64_t off, unsigned size, uint64_t* value, bool write);
  Status requestBar(unsigned bar);
  // pci_map_rom(): the ROM BAR decoding, and the bytes of its image
  // (pci_get_rom_size(), which logs why it stopped early); 0, with the BAR
  // off again, when it holds no valid image. pci_unmap_rom() turns it off.
  uint64_t mapRom();
  void unmapRom();
  // The ioctls of vfio_pci_core_ioctl.cc.
  Result<long> getInfoIoctl(void* arg);
  Result<long> getRegionInfoIoctl(void* arg);
  Result<long> getIrqInfoIoctl(void* arg);
  void addRegionCaps(uint32_t index, VfioInfoCap& caps);
  void addAtomicCompCap(VfioInfoCap& caps);
  uint32_t irqCount(uint32_t index) const;
  Result<long> lowPowerFeature(uint32_t flags, uint32_t feature, void* payload,
                               uint32_t payloadSize, const VfioIoctlCaller& caller);
  Result<long> vfTokenFeature(uint32_t flags, void* payload, uint32_t payloadSize);
  // VFIO_DEVICE_FEATURE_DMA_BUF (v6.19): a dma-buf fd for BAR slices.
  Result<long> dmaBufFeature(uint32_t flags, void* payload, uint32_t payloadSize,
                             const VfioIoctlCaller& caller);
  // VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE: a proposal
  // (DesignOptions::proposalDmabufMmapRevoke), -ENOTTY without it.
  Result<long> dmaBufRevokeFeature(uint32_t flags, void* payload, uint32_t payloadSize,
                                   const VfioIoctlCaller& caller);
  // vfio_pci_core_runtime_suspend/resume() with the PCI core's part
  // around them (state saved, D3hot or D0 for a function without PM).
  void runtimeSuspendLocked() REQUIRES(memoryLock_);
  void runtimeResumeLocked() REQUIRES(memoryLock_);
  void exitLowPowerLocked() REQUIRES(memoryLock_);
  // The put that finds the usage count at zero with runtime PM allowed.
  bool suspendDue() const;
  void probeMmaps();
  // enable() once the device is resumed.
  Status enableResumed();
  // The INTx part of vfio_pci_core_enable(): nointx or pci_2_3.
  void initIntxMasking();
  unsigned maxAccessSize(uint32_t index) const;

  PciDevice& pdev_;
  Machine& machine_;
  std::shared_ptr<Inode> inode_;
  const VfioProfile profile_;
  RwSemaphore memoryLock_{kVfioMemoryLockClass};
  // vconfig[PCI_COMMAND], which the kernel reads under memory_lock; the
  // rest of vconfig is config_'s.
  uint16_t vcmd_ GUARDED_BY(memoryLock_) = 0;
  bool pmRuntimeEngaged_ GUARDED_BY(memoryLock_) = false;
  std::shared_ptr<Eventfd> pmWakeEventfd_ GUARDED_BY(memoryLock_);
  // Runtime-PM state, written under memoryLock_ and read without it by
  // the checks every ioctl makes before it would take the lock (the PM
  // core's usage count and status need no memory_lock). usageDropped_ is
  // the open's usage count given back by LOW_POWER_ENTRY.
  std::atomic<bool> runtimePmAllowed_{true};
  std::atomic<bool> usageDropped_{false};
  std::atomic<bool> opened_{false};  // between enable() and disable()
  std::atomic<bool> runtimeSuspended_{false};
  std::optional<PciSavedState> runtimeSave_ GUARDED_BY(memoryLock_);
  std::atomic<bool> resetWorks_{false};
  bool nointx_ = false;
  // VFIO_DEVICE_FEATURE_PCI_VF_TOKEN of an SR-IOV PF.
  std::mutex vfTokenMu_;
  std::array<uint8_t, 16> vfToken_{};
  bool refillPending_ GUARDED_BY(memoryLock_) = false;
  std::vector<VfioPciDmaBuf*> dmabufs_ GUARDED_BY(memoryLock_);
  // vfio_pci_probe_power_state(): PM capability with NoSoftRst clear.
  const bool needsPmRestore_;
  std::optional<PciSavedState> pmSave_ GUARDED_BY(memoryLock_);
  VfioPciConfig config_{*this};
  std::array<bool, 6> barMmapSupported_{};
  // Two first mmaps (or preads) of a BAR from two threads must request it
  // once: the check and the request are one step under this lock.
  std::mutex barmapLock_;
  std::array<bool, 6> barRequested_{};
  std::array<bool, 6> barClaimedElsewhere_{};
  std::vector<DeviceRegion> deviceRegions_;
  std::atomic<uint64_t> memoryLockWrites_{0};
  AccessTrace accessTrace_;
  const DesignOptions options_;
  std::unique_ptr<MappingDesign> design_;
};

}  // namespace vfiomm
