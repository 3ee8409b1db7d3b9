#include "vfio/vfio_pci_dmabuf.h"

#include <fmt/format.h>

#include <algorithm>

#include "abi/vfio.h"
#include "base/page_geometry.h"
#include "base/user_copy.h"
#include "mm/vma.h"
#include "pci/pci_device.h"
#include "vfio/vfio_pci_core_device.h"
#include "vfio/vfio_pci_dmabuf_file.h"

namespace vfiomm {

namespace {

// DMA_IOVA_USE_SWIOTLB: a length with this bit would trip dma_iova_try_alloc().
constexpr uint64_t kDmaIovaUseSwiotlb = uint64_t{1} << 63;
// KMALLOC_MAX_SIZE (4 MiB with 4 KiB pages): memdup_array_user() of more
// range bytes than kmalloc() serves is -ENOMEM.
constexpr uint64_t kKmallocMaxSize = uint64_t{4} << 20;

// memdup_array_user() of the `nr` ranges at `user`.
Result<std::vector<uapi::vfio_region_dma_range>> copyRanges(const void* user, uint32_t nr) {
  if (uint64_t{nr} * sizeof(uapi::vfio_region_dma_range) > kKmallocMaxSize)
    return fail(Errno::kENOMEM);
  std::vector<uapi::vfio_region_dma_range> ranges(nr);
  if (auto st = copyFromUser(ranges.data(), user, ranges.size() * sizeof(ranges[0])); !st)
    return fail(st.error());
  return ranges;
}

// validate_dmabuf_input(): every range non-empty and page aligned, and the
// total length representable.
Result<uint64_t> validateRanges(const std::vector<uapi::vfio_region_dma_range>& ranges) {
  uint64_t length = 0;
  for (const auto& r : ranges) {
    if (r.length == 0 || !isPageAligned(r.offset) || !isPageAligned(r.length))
      return fail(Errno::kEINVAL);
    if (length + r.length < length) return fail(Errno::kEINVAL);
    length += r.length;
  }
  if ((length & kDmaIovaUseSwiotlb) != 0) return fail(Errno::kEINVAL);
  return length;
}

// vfio_pci_core_get_dmabuf_phys(): the BAR's P2P provider (a memory BAR
// that exists), then each range inside the BAR (vfio_pci_core_fill_phys_vec).
Result<std::vector<PhysVec>> dmabufPhys(const PciDevice& pdev, unsigned bar,
                                        const std::vector<uapi::vfio_region_dma_range>& ranges) {
  if (!pdev.barIsMem(bar) || pdev.barLen(bar) == 0) return fail(Errno::kEINVAL);
  const uint64_t start = pdev.barStart(bar);
  const uint64_t maxAddr = start + pdev.barLen(bar);
  std::vector<PhysVec> phys;
  for (const auto& r : ranges) {
    const uint64_t paddr = start + r.offset;
    if (paddr < start || paddr + r.length < paddr) return fail(Errno::kEOVERFLOW);
    if (paddr + r.length > maxAddr) return fail(Errno::kEINVAL);
    phys.push_back({PhysAddr(paddr), r.length});
  }
  return phys;
}

}  // namespace

VfioPciDmaBuf::VfioPciDmaBuf(VfioPciCoreDevice& vdev, std::vector<PhysVec> physVec)
    : vdev_(&vdev),
      physVec_(std::move(physVec)),
      mmapProposal_(vdev.designOptions().proposalDmabufMmapRevoke),
      zapsMappings_(mmapProposal_ || vdev.designOptions().proposalBarMmapDmabuf) {}

Result<std::shared_ptr<DmaBuf>> VfioPciDmaBuf::exportFromUser(VfioPciCoreDevice& vdev,
                                                              const void* payload) {
  uapi::vfio_device_feature_dma_buf req;
  if (auto st = copyFromUser(&req, payload, sizeof(req)); !st) return fail(st.error());
  if (req.nr_ranges == 0 || req.flags != 0) return fail(Errno::kEINVAL);
  // For PCI the region index is the BAR number.
  if (req.region_index >= uapi::VFIO_PCI_ROM_REGION_INDEX) return fail(Errno::kENODEV);
  auto ranges = copyRanges(static_cast<const uint8_t*>(payload) + sizeof(req), req.nr_ranges);
  if (!ranges) return fail(ranges.error());
  auto length = validateRanges(*ranges);
  if (!length) return fail(length.error());
  auto phys = dmabufPhys(vdev.pdev(), req.region_index, *ranges);
  if (!phys) return fail(phys.error());
  // vfio_device_try_get_registration() cannot fail: model devices are
  // never unregistered while a process uses them.
  return exportBuffer(vdev, std::move(*phys), *length);
}

std::shared_ptr<DmaBuf> VfioPciDmaBuf::exportBuffer(VfioPciCoreDevice& vdev,
                                                    std::vector<PhysVec> phys, uint64_t length) {
  auto priv = std::make_shared<VfioPciDmaBuf>(vdev, std::move(phys));
  auto dmabuf = std::make_shared<DmaBuf>(priv, length);
  priv->dmabuf_ = dmabuf.get();
  vdev.downWriteMemoryLock();
  {
    MutexGuard resv(dmabuf->resv());
    priv->revoked_.store(!vdev.memoryEnabledLocked(), std::memory_order_release);
    vdev.dmaBufsLocked().push_back(priv.get());
  }
  vdev.memoryLock().upWrite();
  return dmabuf;
}

void VfioPciDmaBuf::move(VfioPciCoreDevice& vdev, bool revoked) {
  vdev.memoryLock().assertHeldWrite();
  // The kernel skips a buffer whose file is already going (get_file_active);
  // here such a buffer is still whole (its release waits for memory_lock)
  // and has no importer left, so moving it changes nothing observable.
  for (VfioPciDmaBuf* priv : vdev.dmaBufsLocked()) {
    // A permanently revoked buffer (the proposal) stays revoked.
    if (priv->permanent_.load(std::memory_order_acquire)) continue;
    if (priv->revoked_.load(std::memory_order_acquire) != revoked) priv->setRevoked(revoked);
  }
}

void VfioPciDmaBuf::cleanup(VfioPciCoreDevice& vdev) {
  vdev.downWriteMemoryLock();
  for (VfioPciDmaBuf* priv : vdev.dmaBufsLocked()) {
    priv->vdev_.store(nullptr, std::memory_order_release);
    priv->setRevoked(true);  // notified even if it was revoked already
  }
  vdev.dmaBufsLocked().clear();
  vdev.memoryLock().upWrite();
}

void VfioPciDmaBuf::setRevoked(bool revoked) {
  {
    MutexGuard resv(dmabuf_->resv());
    revoked_.store(revoked, std::memory_order_release);
    dmabuf_->moveNotify();
  }
  if (revoked && zapsMappings_) zapMmaps();
}

void VfioPciDmaBuf::zapMmaps() { mapping_.unmapMappingRange(0, 0, true); }

Status VfioPciDmaBuf::revokePermanently(VfioPciCoreDevice& vdev, DmaBuf& dmabuf) {
  // Every dma-buf of the model is vfio's; one of another device (or one
  // its device's last close detached) is not this device's to revoke.
  auto* priv = dynamic_cast<VfioPciDmaBuf*>(&dmabuf.ops());
  vdev.downWriteMemoryLock();
  Status st = ok();
  if (priv == nullptr || priv->device() != &vdev) {
    st = fail(Errno::kENODEV);
  } else if (priv->permanent_.load(std::memory_order_acquire)) {
    st = fail(Errno::kEBADFD);
  } else {
    priv->permanent_.store(true, std::memory_order_release);
    // A temporarily revoked buffer was zapped and its importers told.
    if (!priv->revoked()) priv->setRevoked(true);
  }
  vdev.memoryLock().upWrite();
  return st;
}

std::shared_ptr<File> VfioPciDmaBuf::file(const std::shared_ptr<DmaBuf>& dmabuf) {
  return std::make_shared<VfioPciDmaBufFile>(dmabuf);
}

Status VfioPciDmaBuf::mmapBar(VfioPciCoreDevice& vdev, unsigned bar, uint64_t offset,
                              std::shared_ptr<File> deviceFile, Vma& vma) {
  const PciDevice& pdev = vdev.pdev();
  const uint64_t length = pageAlignUp(pdev.barLen(bar));
  auto dmabuf = exportBuffer(vdev, {{PhysAddr(pdev.barStart(bar)), length}}, length);
  // The name the proposal gives the buffer: the device and the BAR.
  auto file = std::make_shared<VfioPciDmaBufFile>(
      std::move(dmabuf), fmt::format("{} BAR{}", pdev.name(), bar), std::move(deviceFile));
  vma.setPgoff(PgOff::fromBytes(offset));
  vma.setFile(file);
  return file->mmapBuffer(vma);
}

std::optional<PhysAddr> VfioPciDmaBuf::physAt(uint64_t offset) const {
  for (const PhysVec& v : physVec_) {
    if (offset < v.len) return v.paddr + offset;
    offset -= v.len;
  }
  return std::nullopt;
}

Status VfioPciDmaBuf::iommufdMap(DmaBufAttachment& attachment, PhysVec* phys) {
  attachment.dmabuf().resv().assertHeld();
  auto* priv = dynamic_cast<VfioPciDmaBuf*>(&attachment.dmabuf().ops());
  if (priv == nullptr) return fail(Errno::kEOPNOTSUPP);
  if (priv->revoked_.load(std::memory_order_acquire)) return fail(Errno::kENODEV);
  // More than one range would need real dma-buf mapping support.
  if (priv->physVec_.size() != 1) return fail(Errno::kEOPNOTSUPP);
  *phys = priv->physVec_[0];
  return ok();
}

Status VfioPciDmaBuf::attach(DmaBufAttachment& attachment) {
  if (!attachment.peer2peer()) return fail(Errno::kEOPNOTSUPP);
  if (revoked_.load(std::memory_order_acquire)) return fail(Errno::kENODEV);
  return ok();
}

void VfioPciDmaBuf::release() {
  // Either this or cleanup() takes the buffer off the list.
  VfioPciCoreDevice* vdev = vdev_.load(std::memory_order_acquire);
  if (vdev == nullptr) return;
  vdev->downWriteMemoryLock();
  auto& list = vdev->dmaBufsLocked();
  list.erase(std::remove(list.begin(), list.end(), this), list.end());
  vdev->memoryLock().upWrite();
}

VfioPciDmaBuf::State VfioPciDmaBuf::state() const {
  if (vdev_.load(std::memory_order_acquire) == nullptr ||
      permanent_.load(std::memory_order_acquire))
    return State::kPermanentlyRevoked;
  return revoked_.load(std::memory_order_acquire) ? State::kRevoked : State::kUsable;
}

}  // namespace vfiomm
