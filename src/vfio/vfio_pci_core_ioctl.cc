// The device ioctls of vfio_pci_core.c on the caller's argument, with the
// kernel's argsz/minsz checks, capability chains and copy-back sizes
// (vfio-uapi.md §1-§6). Hot reset is the dev_set's (vfio_device_set.cc).
#include <algorithm>
#include <cstring>

#include "abi/vfio.h"
#include "base/user_copy.h"
#include "fs/eventfd.h"
#include "hw/machine.h"
#include "pci/pci_bus.h"
#include "pci/pci_regs.h"
#include "vfio/vfio_info_cap.h"
#include "vfio/vfio_pci_core_device.h"
#include "vfio/vfio_pci_dmabuf.h"

namespace vfiomm {

namespace {

constexpr uint32_t kDeviceInfoMinsz = offsetof(uapi::vfio_device_info, cap_offset);
constexpr uint32_t kIrqInfoMinsz = sizeof(uapi::vfio_irq_info);
// devinfo_copyback v1 bounded the copy by a field of another struct: 20 bytes.
constexpr uint32_t kDeviceInfoV1Copy = offsetof(uapi::vfio_device_info, pad);

}  // namespace

Result<long> VfioPciCoreDevice::ioctl(unsigned long request, void* arg, const VfioIoctlCaller&) {
  switch (request) {
    case uapi::VFIO_DEVICE_GET_INFO: return getInfoIoctl(arg);
    case uapi::VFIO_DEVICE_GET_REGION_INFO: return getRegionInfoIoctl(arg);
    case uapi::VFIO_DEVICE_GET_IRQ_INFO: return getIrqInfoIoctl(arg);
    case uapi::VFIO_DEVICE_RESET:
      if (auto st = reset(); !st) return fail(st.error());
      return 0L;
    default: return fail(Errno::kENOTTY);
  }
}

// ---------------------------------------------------------------------------
// VFIO_DEVICE_GET_INFO (§2)

// VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP: each completer width the function
// has and the path to the root port can carry (pci_enable_atomic_ops_to_root).
void VfioPciCoreDevice::addAtomicCompCap(VfioInfoCap& caps) {
  if (!profile_.atomicCompCap || !pdev_.config().pcie) return;
  const uint32_t devcap2 = pdev_.config().pcie->atomicCompleter;
  const uint32_t root = pdev_.bus() != nullptr ? pdev_.bus()->rootPortAtomicCompleter() : 0;
  struct {
    uint32_t flags = 0;
    uint32_t reserved = 0;
  } body;
  for (const auto& [bit, flag] :
       {std::pair{kPciExpDevcap2AtomicComp32, uapi::VFIO_PCI_ATOMIC_COMP32},
        std::pair{kPciExpDevcap2AtomicComp64, uapi::VFIO_PCI_ATOMIC_COMP64},
        std::pair{kPciExpDevcap2AtomicComp128, uapi::VFIO_PCI_ATOMIC_COMP128}}) {
    if ((devcap2 & bit) == 0 || (root & bit) == 0) continue;
    body.flags |= flag;
  }
  if (body.flags == 0) return;
  // The side effect of a successful enable: AtomicOp Requester Enable.
  const uint32_t devctl2 = *pdev_.pcieCapOffset() + kPciExpDevctl2;
  const uint32_t v = pdev_.configRead(devctl2, 2).value_or(0);
  (void)pdev_.configWrite(devctl2, 2, v | kPciExpDevctl2AtomicReq);
  caps.add(uapi::VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP, 1, &body, sizeof(body));
}

Result<long> VfioPciCoreDevice::getInfoIoctl(void* arg) {
  uapi::vfio_device_info info{};
  if (auto st = copyFromUser(&info, arg, kDeviceInfoMinsz); !st) return fail(st.error());
  if (info.argsz < kDeviceInfoMinsz) return fail(Errno::kEINVAL);
  info.flags = uapi::VFIO_DEVICE_FLAGS_PCI;
  if (resetWorks()) info.flags |= uapi::VFIO_DEVICE_FLAGS_RESET;
  info.num_regions = uapi::VFIO_PCI_NUM_REGIONS + static_cast<uint32_t>(deviceRegions_.size());
  info.num_irqs = uapi::VFIO_PCI_NUM_IRQS;
  // What is copied back depends on the caller's argsz, not on the argsz
  // the capability chain asks for.
  uint32_t copy = std::min<uint32_t>(info.argsz, sizeof(info));
  if (!profile_.devinfoCopybackV2)
    copy = info.argsz >= kDeviceInfoV1Copy ? kDeviceInfoV1Copy : kDeviceInfoMinsz;
  VfioInfoCap caps;
  addAtomicCompCap(caps);
  if (auto st = caps.copyOut(arg, sizeof(info), &info.argsz, &info.cap_offset, &info.flags,
                             uapi::VFIO_DEVICE_FLAGS_CAPS);
      !st)
    return fail(st.error());
  if (!profile_.devinfoCopybackV2) info.cap_offset = 0;
  if (auto st = copyToUser(arg, &info, copy); !st) return fail(st.error());
  return 0L;
}

// ---------------------------------------------------------------------------
// VFIO_DEVICE_GET_REGION_INFO (§4)

void VfioPciCoreDevice::addRegionCaps(uint32_t index, VfioInfoCap& caps) {
  if (index <= vfio::kBar5) {
    // The MSI-X table's BAR, when it can be mapped at all.
    const auto msix = pdev_.msixTable();
    if (msix && msix->bar == index && barMmapSupported_[index])
      caps.add(uapi::VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1, nullptr, 0);
    return;
  }
  if (index < vfio::kNumRegions) return;
  const DeviceRegion& r = deviceRegions_[index - vfio::kNumRegions];
  const uint32_t typeBody[2] = {r.type, r.subtype};
  caps.add(uapi::VFIO_REGION_INFO_CAP_TYPE, 1, typeBody, sizeof(typeBody));
  if (r.sparseAreas.empty()) return;
  // The region's add_capability op: a sparse-mmap capability.
  std::vector<uint64_t> body(1 + 2 * r.sparseAreas.size());
  const auto nrAreas = static_cast<uint32_t>(r.sparseAreas.size());
  std::memcpy(body.data(), &nrAreas, sizeof(nrAreas));  // nr_areas, reserved 0
  for (size_t i = 0; i < r.sparseAreas.size(); ++i) {
    body[1 + 2 * i] = r.sparseAreas[i].first;
    body[2 + 2 * i] = r.sparseAreas[i].second;
  }
  caps.add(uapi::VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, body.data(),
           static_cast<uint32_t>(body.size() * sizeof(uint64_t)));
}

Result<long> VfioPciCoreDevice::getRegionInfoIoctl(void* arg) {
  uapi::vfio_region_info info{};
  // minsz covers the whole struct: cap_offset comes back as the caller
  // passed it when there is no chain (UAPI-09).
  if (auto st = copyFromUser(&info, arg, sizeof(info)); !st) return fail(st.error());
  if (info.argsz < sizeof(info)) return fail(Errno::kEINVAL);
  auto r = getRegionInfo(info.index);
  if (!r) return fail(r.error());
  info.flags = r->flags;
  info.size = r->size;
  info.offset = r->offset;
  VfioInfoCap caps;
  addRegionCaps(info.index, caps);
  if (auto st = caps.copyOut(arg, sizeof(info), &info.argsz, &info.cap_offset, &info.flags,
                             uapi::VFIO_REGION_INFO_FLAG_CAPS);
      !st)
    return fail(st.error());
  if (auto st = copyToUser(arg, &info, sizeof(info)); !st) return fail(st.error());
  return 0L;
}

// ---------------------------------------------------------------------------
// VFIO_DEVICE_GET_IRQ_INFO (§3)

// vfio_pci_get_irq_count().
uint32_t VfioPciCoreDevice::irqCount(uint32_t index) const {
  switch (index) {
    case uapi::VFIO_PCI_INTX_IRQ_INDEX: {
      // The virtual Interrupt Pin: 0 for a VF and a nointx function, else
      // the device's.
      if (pdev_.noCommandMemory() || nointx_) return 0;
      return pdev_.configRead(kPciInterruptPin, 1).value_or(0) != 0 ? 1 : 0;
    }
    case uapi::VFIO_PCI_MSI_IRQ_INDEX: {
      const auto cap = pdev_.findCapability(kPciCapIdMsi);
      if (!cap) return 0;
      const uint32_t flags = pdev_.configRead(*cap + kPciMsiFlags, 2).value_or(0);
      return 1U << ((flags & kPciMsiFlagsQmask) >> 1);
    }
    case uapi::VFIO_PCI_MSIX_IRQ_INDEX: {
      const auto cap = pdev_.msixCapOffset();
      if (!cap) return 0;
      return (pdev_.configRead(*cap + kPciMsixFlags, 2).value_or(0) & kPciMsixFlagsQsize) + 1;
    }
    default:  // ERR (PCIe only, checked by the caller) and REQ
      return 1;
  }
}

Result<long> VfioPciCoreDevice::getIrqInfoIoctl(void* arg) {
  uapi::vfio_irq_info info{};
  if (auto st = copyFromUser(&info, arg, kIrqInfoMinsz); !st) return fail(st.error());
  if (info.argsz < kIrqInfoMinsz || info.index >= uapi::VFIO_PCI_NUM_IRQS)
    return fail(Errno::kEINVAL);
  if (info.index == uapi::VFIO_PCI_ERR_IRQ_INDEX && !pdev_.pcieCapOffset())
    return fail(Errno::kEINVAL);
  info.flags = uapi::VFIO_IRQ_INFO_EVENTFD;
  info.count = irqCount(info.index);
  if (info.index == uapi::VFIO_PCI_INTX_IRQ_INDEX)
    info.flags |= uapi::VFIO_IRQ_INFO_MASKABLE | uapi::VFIO_IRQ_INFO_AUTOMASKED;
  else if (!(info.index == uapi::VFIO_PCI_MSIX_IRQ_INDEX && hasDynMsix()))
    info.flags |= uapi::VFIO_IRQ_INFO_NORESIZE;
  if (auto st = copyToUser(arg, &info, kIrqInfoMinsz); !st) return fail(st.error());
  return 0L;
}

// ---------------------------------------------------------------------------
// VFIO_DEVICE_FEATURE, the driver's part (§6.2, §6.3)

namespace {

// vfio_check_feature(): 1 when the driver is to act, 0 for a probe.
Result<int> checkFeature(uint32_t flags, uint32_t payloadSize, uint32_t supported, uint32_t minsz) {
  const uint32_t dirs = flags & (uapi::VFIO_DEVICE_FEATURE_GET | uapi::VFIO_DEVICE_FEATURE_SET);
  if ((dirs & ~supported) != 0) return fail(Errno::kEINVAL);
  if (flags & uapi::VFIO_DEVICE_FEATURE_PROBE) return 0;
  if (dirs == 0) return fail(Errno::kEINVAL);
  if (payloadSize < minsz) return fail(Errno::kEINVAL);
  return 1;
}

}  // namespace

Result<long> VfioPciCoreDevice::feature(uint32_t flags, void* payload, uint32_t payloadSize,
                                        const VfioIoctlCaller& caller) {
  const uint32_t id = flags & uapi::VFIO_DEVICE_FEATURE_MASK;
  switch (id) {
    case uapi::VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY:
    case uapi::VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP:
    case uapi::VFIO_DEVICE_FEATURE_LOW_POWER_EXIT:
      return lowPowerFeature(flags, id, payload, payloadSize, caller);
    case uapi::VFIO_DEVICE_FEATURE_PCI_VF_TOKEN: return vfTokenFeature(flags, payload, payloadSize);
    case uapi::VFIO_DEVICE_FEATURE_DMA_BUF:
      return dmaBufFeature(flags, payload, payloadSize, caller);
    case uapi::VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE:
      return dmaBufRevokeFeature(flags, payload, payloadSize, caller);
    default: return fail(Errno::kENOTTY);
  }
}

Result<long> VfioPciCoreDevice::lowPowerFeature(uint32_t flags, uint32_t feature, void* payload,
                                                uint32_t payloadSize,
                                                const VfioIoctlCaller& caller) {
  const bool wakeup = feature == uapi::VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP;
  const uint32_t minsz = wakeup ? sizeof(uapi::vfio_device_low_power_entry_with_wakeup) : 0;
  auto act = checkFeature(flags, payloadSize, uapi::VFIO_DEVICE_FEATURE_SET, minsz);
  if (!act) return fail(act.error());
  if (*act == 0) return 0L;
  if (feature == uapi::VFIO_DEVICE_FEATURE_LOW_POWER_EXIT) {
    if (auto st = lowPowerExit(); !st) return fail(st.error());
    return 0L;
  }
  std::shared_ptr<Eventfd> eventfd;
  if (wakeup) {
    uapi::vfio_device_low_power_entry_with_wakeup entry{};
    if (auto st = copyFromUser(&entry, payload, sizeof(entry)); !st) return fail(st.error());
    if (entry.wakeup_eventfd < 0) return fail(Errno::kEINVAL);
    if (!caller.eventfdFromFd) return fail(Errno::kEBADF);
    auto e = caller.eventfdFromFd(entry.wakeup_eventfd);
    if (!e) return fail(e.error());
    eventfd = std::move(*e);
  }
  if (auto st = lowPowerEntry(std::move(eventfd)); !st) return fail(st.error());
  return 0L;
}

// vfio_pci_core_feature_dma_buf(). Every device here is plain vfio-pci,
// whose ops have get_dmabuf_phys, so the -EOPNOTSUPP of a variant driver
// without it does not arise; a kernel without CONFIG_VFIO_PCI_DMABUF has
// no such feature at all (-ENOTTY).
Result<long> VfioPciCoreDevice::dmaBufFeature(uint32_t flags, void* payload, uint32_t payloadSize,
                                              const VfioIoctlCaller& caller) {
  if (!profile_.dmabufFeature) return fail(Errno::kENOTTY);
  auto act = checkFeature(flags, payloadSize, uapi::VFIO_DEVICE_FEATURE_GET,
                          sizeof(uapi::vfio_device_feature_dma_buf));
  if (!act) return fail(act.error());
  if (*act == 0) return 0L;
  auto dmabuf = VfioPciDmaBuf::exportFromUser(*this, payload);
  if (!dmabuf) return fail(dmabuf.error());
  if (!caller.dmaBufFd) return fail(Errno::kEMFILE);
  // On failure the buffer's last reference goes here (dma_buf_put).
  auto fd = caller.dmaBufFd(std::move(*dmabuf));
  if (!fd) return fail(fd.error());
  return long{*fd};
}

// The proposal's revoke feature (dma-mapping.md §4.4): SET only, with the
// buffer's fd; the checks in the proposal's order.
Result<long> VfioPciCoreDevice::dmaBufRevokeFeature(uint32_t flags, void* payload,
                                                    uint32_t payloadSize,
                                                    const VfioIoctlCaller& caller) {
  if (!profile_.dmabufFeature || !options_.proposalDmabufMmapRevoke) return fail(Errno::kENOTTY);
  auto act = checkFeature(flags, payloadSize, uapi::VFIO_DEVICE_FEATURE_SET,
                          sizeof(uapi::vfio_device_feature_dma_buf_revoke));
  if (!act) return fail(act.error());
  if (*act == 0) return 0L;
  uapi::vfio_device_feature_dma_buf_revoke req;
  if (auto st = copyFromUser(&req, payload, sizeof(req)); !st) return fail(st.error());
  if (!caller.dmaBufFromFd) return fail(Errno::kEBADF);
  auto dmabuf = caller.dmaBufFromFd(req.dmabuf_fd);
  if (!dmabuf) return fail(dmabuf.error());
  if (auto st = VfioPciDmaBuf::revokePermanently(*this, **dmabuf); !st) return fail(st.error());
  return 0L;
}

// VFIO_DEVICE_FEATURE_PCI_VF_TOKEN: only a PF has one (vdev->vf_token); it
// can be set, never read back.
Result<long> VfioPciCoreDevice::vfTokenFeature(uint32_t flags, void* payload,
                                               uint32_t payloadSize) {
  if (!pdev_.config().sriovPf) return fail(Errno::kENOTTY);
  auto act = checkFeature(flags, payloadSize, uapi::VFIO_DEVICE_FEATURE_SET, 16);
  if (!act) return fail(act.error());
  if (*act == 0) return 0L;
  std::array<uint8_t, 16> uuid{};
  if (auto st = copyFromUser(uuid.data(), payload, uuid.size()); !st) return fail(st.error());
  std::lock_guard g(vfTokenMu_);
  vfToken_ = uuid;
  return 0L;
}

}  // namespace vfiomm
