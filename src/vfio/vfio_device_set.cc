#include "vfio/vfio_device_set.h"

#include <algorithm>

#include "abi/vfio.h"
#include "base/user_copy.h"
#include "pci/pci_bus.h"
#include "pci/pci_regs.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_group.h"

namespace vfiomm {

namespace {

bool boundTo(const VfioDevice& dev, int iommufd) {
  return iommufd != 0 && dev.boundIommufd() == iommufd;
}

// iommufd_ctx_has_group(): a device of `dev`'s IOMMU group is bound to
// `iommufd`, which then owns the group, so that no other context can take
// `dev` (vfio_iommufd_get_dev_id()'s -ENOENT).
bool iommufdOwnsGroup(const VfioDevice& dev, int iommufd) {
  if (dev.group() == nullptr) return false;
  const std::vector<VfioDevice*>& members = dev.group()->devices();
  return std::any_of(members.begin(), members.end(),
                     [&](const VfioDevice* m) { return boundTo(*m, iommufd); });
}

}  // namespace

void VfioDeviceSet::addDevice(VfioDevice& device) {
  devices_.push_back(&device);
  device.setDevSet(this);
}

Result<std::vector<PciDevice*>> VfioDeviceSet::probeResetScope(const VfioDevice& requester) const {
  std::vector<PciDevice*> scope = bus_.resetScope(requester.pdev());
  if (scope.empty()) return fail(Errno::kENODEV);
  return scope;
}

VfioDevice* VfioDeviceSet::vfioDevice(const PciDevice* pdev) const {
  for (VfioDevice* d : devices_)
    if (&d->pdev() == pdev) return d;
  return nullptr;
}

// One vfio_pci_dependent_device: where the device is and, for a group
// caller, its IOMMU group; for a cdev caller, its id in the caller's
// iommufd or why it has none.
Status VfioDeviceSet::fillDependent(const PciDevice& pdev, const HotResetOwner& owner,
                                    uapi::vfio_pci_dependent_device* entry, uint32_t* flags) const {
  const VfioDevice* dev = vfioDevice(&pdev);
  entry->segment = 0;
  entry->bus = pdev.busNumber();
  entry->devfn = static_cast<uint8_t>(pdev.slot() << 3 | pdev.function());
  if (!owner.cdev) {
    if (dev == nullptr || dev->group() == nullptr) return fail(Errno::kEPERM);
    entry->group_id = static_cast<uint32_t>(dev->group()->id());
    return ok();
  }
  if (dev != nullptr && boundTo(*dev, owner.iommufd)) {
    entry->devid = dev->boundDevid();
    return ok();
  }
  if (dev != nullptr && iommufdOwnsGroup(*dev, owner.iommufd)) {
    entry->devid = uapi::VFIO_PCI_DEVID_OWNED;
    return ok();
  }
  entry->devid = uapi::VFIO_PCI_DEVID_NOT_OWNED;
  *flags &= ~uapi::VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
  return ok();
}

Result<long> VfioDeviceSet::hotResetInfoIoctl(VfioDevice& requester, const HotResetOwner& owner,
                                              void* arg) {
  constexpr uint32_t minsz = sizeof(uapi::vfio_pci_hot_reset_info);
  uapi::vfio_pci_hot_reset_info hdr;
  if (auto st = copyFromUser(&hdr, arg, minsz); !st) return fail(st.error());
  if (hdr.argsz < minsz) return fail(Errno::kEINVAL);
  hdr.flags = 0;
  auto scope = probeResetScope(requester);
  if (!scope) return fail(scope.error());
  const auto count = static_cast<uint32_t>(scope->size());
  if (count > (hdr.argsz - minsz) / sizeof(uapi::vfio_pci_dependent_device)) {
    hdr.count = count;
    if (auto st = copyToUser(arg, &hdr, minsz); !st) return fail(st.error());
    return fail(Errno::kENOSPC);
  }
  if (owner.cdev && owner.profile.hotResetCdev)
    hdr.flags = uapi::VFIO_PCI_HOT_RESET_FLAG_DEV_ID | uapi::VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
  std::vector<uapi::vfio_pci_dependent_device> entries(count);
  for (uint32_t i = 0; i < count; ++i)
    if (auto st = fillDependent(*(*scope)[i], owner, &entries[i], &hdr.flags); !st)
      return fail(st.error());
  hdr.count = count;
  auto* user = static_cast<uint8_t*>(arg);
  if (auto st = copyToUser(user + minsz, entries.data(), count * sizeof(entries[0])); !st)
    return fail(st.error());
  if (auto st = copyToUser(arg, &hdr, minsz); !st) return fail(st.error());
  return 0L;
}

Result<long> VfioDeviceSet::hotResetIoctl(VfioDevice& requester, HotResetOwner owner, void* arg,
                                          const VfioIoctlCaller& caller) {
  constexpr uint32_t minsz = sizeof(uapi::vfio_pci_hot_reset);
  uapi::vfio_pci_hot_reset hdr;
  if (auto st = copyFromUser(&hdr, arg, minsz); !st) return fail(st.error());
  if (hdr.argsz < minsz || hdr.flags != 0) return fail(Errno::kEINVAL);
  // A group caller names its groups, a cdev caller none (its iommufd is
  // the proof of ownership); before the cdev series only the first rule.
  if (owner.profile.hotResetCdev && (owner.cdev ? hdr.count != 0 : hdr.count == 0))
    return fail(Errno::kEINVAL);
  auto scope = probeResetScope(requester);
  if (!scope) return fail(scope.error());
  if (!owner.profile.hotResetCdev && hdr.count == 0) return fail(Errno::kEINVAL);
  if (hdr.count > scope->size()) return fail(Errno::kEINVAL);
  std::vector<int32_t> fds(hdr.count);
  if (auto st = copyFromUser(fds.data(), static_cast<uint8_t*>(arg) + minsz,
                             fds.size() * sizeof(int32_t));
      !st)
    return fail(st.error());
  for (int32_t fd : fds) {
    if (!caller.groupFromFd) return fail(Errno::kEBADF);
    auto g = caller.groupFromFd(fd);
    if (!g) return fail(g.error());
    owner.groups.push_back(*g);
  }
  if (auto st = hotReset(requester, owner); !st) return fail(st.error());
  return 0L;
}

bool VfioDeviceSet::owned(const VfioDevice& dev, const HotResetOwner& owner) const {
  if (owner.cdev) return boundTo(dev, owner.iommufd) || iommufdOwnsGroup(dev, owner.iommufd);
  return std::find(owner.groups.begin(), owner.groups.end(), dev.group()) != owner.groups.end();
}

Status VfioDeviceSet::hotReset(VfioDevice& requester, const HotResetOwner& owner) {
  std::vector<VfioDevice*> refill;
  Status status = ok();
  {
    MutexGuard g(lock_);
    status = resetLocked(requester, owner, &refill);
  }
  // prefault's refill takes mmap_locks: never while any memory_lock (or
  // dev_set->lock) of the set is held. A device both resumed and reset is
  // listed twice and refilled once, in the order first listed.
  for (auto it = refill.begin(); it != refill.end(); ++it)
    if (std::find(refill.begin(), it, *it) == it) (*it)->pci().design().memoryEnabled();
  return status;
}

Status VfioDeviceSet::resetLocked(VfioDevice& requester, const HotResetOwner& owner,
                                  std::vector<VfioDevice*>* refill) {
  // Every device the reset affects must be in this dev_set.
  for (PciDevice* pdev : bus_.resetScope(requester.pdev())) {
    const bool inSet = std::any_of(devices_.begin(), devices_.end(),
                                   [&](VfioDevice* d) { return &d->pdev() == pdev; });
    if (!inSet) return fail(Errno::kEINVAL);
  }
  // vfio_pci_dev_set_pm_runtime_get(): a runtime-suspended device of the
  // set is resumed before the reset and may suspend again after it.
  for (VfioDevice* dev : devices_)
    if (dev->pci().pmRuntimeGetDeferRefill()) refill->push_back(dev);
  const Status status = lockAndResetBus(requester, owner, refill);
  for (VfioDevice* dev : devices_) dev->pci().pmRuntimePut();
  return status;
}

// vfio_pci_dev_set_hot_reset()'s trylock + zap of one device of the set.
// The seeded bug hotResetZapsRequesterOnly (DesignOptions) zaps the
// requester only and just locks the others.
bool VfioDeviceSet::tryLockForReset(VfioDevice& dev,
                                    VfioDevice& requester) NO_THREAD_SAFETY_ANALYSIS {
  VfioPciCoreDevice& pci = dev.pci();
  if (pci.designOptions().hotResetZapsRequesterOnly && &dev != &requester) [[unlikely]]
    return pci.downWriteTrylockMemoryLock();
  return pci.tryZapAndDownWriteMemoryLock();
}

// Holds a dynamic set of memory_locks, which the analysis cannot track;
// lockdep sees every one of them.
Status VfioDeviceSet::lockAndResetBus(VfioDevice& requester, const HotResetOwner& owner,
                                      std::vector<VfioDevice*>* refill) NO_THREAD_SAFETY_ANALYSIS {
  // G2+: one loop of trylock + zap; a failure unwinds the locks taken but
  // the devices zapped so far stay zapped (they refault).
  std::vector<VfioDevice*> locked;
  Status status = ok();
  for (VfioDevice* dev : devices_) {
    if (!owned(*dev, owner)) {
      status = fail(Errno::kEINVAL);
      break;
    }
    if (!tryLockForReset(*dev, requester)) {
      status = fail(Errno::kEBUSY);
      break;
    }
    dev->pci().revokeDmaBufsLocked();
    locked.push_back(dev);
  }
  if (status) {
    // D0 through vfio_pci_set_power_state(): the bus reset would wake a
    // NoSoftRst- function without giving its configuration back.
    for (VfioDevice* dev : locked) (void)dev->pci().setPowerStateLocked(PciPowerState::kD0);
    status = bus_.resetBus(requester.pdev());
  }
  // The kernel un-revokes only opened devices (an unopened one has no
  // virtual config to test); an unopened device has no dma-buf left, so
  // testing every device comes to the same.
  for (auto it = locked.rbegin(); it != locked.rend(); ++it) {
    (*it)->pci().restoreDmaBufsLocked();
    if ((*it)->pci().upWriteMemoryLockDeferRefill()) refill->push_back(*it);
  }
  return status;
}

}  // namespace vfiomm
