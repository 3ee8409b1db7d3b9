// VfioPciDmaBuf: a dma-buf exported from slices of one vfio-pci BAR
// (struct vfio_pci_dma_buf, drivers/vfio/pci/vfio_pci_dmabuf.c, v6.19;
// dma-mapping.md §4.1, §4.2). It is the exporter's dma_buf_ops and private
// data of its DmaBuf, and sits on its device's list (vdev->dmabufs) so that
// every zap trigger revokes it under the write-held memory_lock and the
// paths that restore access un-revoke it. The last close of the device
// revokes it for good and detaches it: the fd stays a valid file, but
// nothing can attach or map it any more.
//
// States: usable, revoked (memory decode or power off, a reset under way),
// permanently revoked (the device was closed). Importers hear of every
// change of state through dma_buf_move_notify().
//
// With the proposal DesignOptions::proposalDmabufMmapRevoke (not merged,
// dma-mapping.md §4.4) the fd can also be mmapped (VfioPciDmaBufFile),
// every revoke zaps those mappings, and the revoke feature makes one buffer
// permanently revoked while its device stays open. With the proposal
// DesignOptions::proposalBarMmapDmabuf an mmap of a BAR of the device fd
// exports a buffer for that BAR and maps it instead (mmapBar()); its
// revokes zap those mappings the same way.
//
// Locks: memory_lock (write) then the buffer's reservation lock, for every
// change of `revoked`; attach reads it without a lock, as the kernel does.
// The zap of the buffer's own mappings runs under memory_lock (write)
// after the reservation lock is dropped; their fault holds memory_lock for
// read across the check and the insert, as a BAR fault does.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/addr.h"
#include "base/result.h"
#include "dmabuf/dma_buf.h"
#include "iommufd/iopt_dmabuf_pages.h"
#include "mm/address_space.h"
#include "sync/thread_annotations.h"

namespace vfiomm {

class File;
class Vma;
class VfioPciCoreDevice;

class VfioPciDmaBuf : public DmaBufOps {
 public:
  enum class State { kUsable, kRevoked, kPermanentlyRevoked };

  VfioPciDmaBuf(VfioPciCoreDevice& vdev, std::vector<PhysVec> physVec);

  // vfio_pci_core_feature_dma_buf() after vfio_check_feature(): the
  // payload's checks in the kernel's order, then the export. The buffer
  // starts revoked when memory is not enabled.
  static Result<std::shared_ptr<DmaBuf>> exportFromUser(VfioPciCoreDevice& vdev,
                                                        const void* payload);
  // vfio_pci_dma_buf_move(): every buffer of `vdev` to `revoked`;
  // importers are notified only of a change.
  static void move(VfioPciCoreDevice& vdev, bool revoked);
  // vfio_pci_dma_buf_cleanup() at the device's last close.
  static void cleanup(VfioPciCoreDevice& vdev);
  // The proposal's revoke feature: `dmabuf` revoked for good and its
  // mappings zapped. -ENODEV when it is not one of `vdev`'s buffers,
  // -EBADFD when it is permanently revoked already.
  static Status revokePermanently(VfioPciCoreDevice& vdev, DmaBuf& dmabuf);
  // The dma-buf's file, which mmap(2) of its fd maps: a VMA of it holds
  // the buffer while it exists.
  static std::shared_ptr<File> file(const std::shared_ptr<DmaBuf>& dmabuf);
  // The buffer has an mmap op: only under the first proposal.
  bool hasMmap() const { return mmapProposal_; }
  // The second proposal's vfio_pci_core_mmap() of BAR `bar`, from byte
  // `offset` of it: a buffer exported for the whole BAR becomes the VMA's
  // file (it keeps `deviceFile`, the fd's file, open while it lives), and
  // the buffer's mmap sets the VMA up, its pgoff the offset in the buffer.
  static Status mmapBar(VfioPciCoreDevice& vdev, unsigned bar, uint64_t offset,
                        std::shared_ptr<File> deviceFile, Vma& vma);
  // vfio_pci_dma_buf_iommufd_map(): the private interconnect to iommufd
  // (DmaBufIommufdMap). The caller holds the reservation lock.
  static Status iommufdMap(DmaBufAttachment& attachment, PhysVec* phys);

  // dma_buf_ops.
  Status attach(DmaBufAttachment& attachment) override;  // needs P2P; -ENODEV when revoked
  void release() override;                               // off the device's list

  State state() const;
  const std::vector<PhysVec>& physVec() const { return physVec_; }
  // priv->vdev: null once the device's last close detached the buffer.
  VfioPciCoreDevice* device() const { return vdev_.load(std::memory_order_acquire); }
  bool revoked() const { return revoked_.load(std::memory_order_acquire); }
  // The BAR address at byte `offset` of the buffer's ranges, or nullopt
  // past their end.
  std::optional<PhysAddr> physAt(uint64_t offset) const;
  AddressSpace& mapping() { return mapping_; }

 private:
  // dma_buf_export() and the listing on the device: revoked from the start
  // when memory is not enabled.
  static std::shared_ptr<DmaBuf> exportBuffer(VfioPciCoreDevice& vdev, std::vector<PhysVec> phys,
                                              uint64_t length);
  // Under memory_lock (write): `revoked` set and the importers told, under
  // the reservation lock; a revoke then zaps the buffer's own mappings.
  void setRevoked(bool revoked);
  // unmap_mapping_range() over the buffer's own mappings.
  void zapMmaps();

  // priv->vdev: null once the device's last close detached the buffer.
  std::atomic<VfioPciCoreDevice*> vdev_;
  DmaBuf* dmabuf_ = nullptr;  // the DmaBuf that owns this object
  const std::vector<PhysVec> physVec_;
  std::atomic<bool> revoked_{false};
  // The first proposal: the fd has an mmap op, and
  // VFIO_PCI_DMABUF_PERM_REVOKED.
  const bool mmapProposal_;
  // Either proposal: the buffer can be mapped, so a revoke zaps.
  const bool zapsMappings_;
  std::atomic<bool> permanent_{false};
  // The dma-buf file's address space: every mapping of the buffer is in
  // its i_mmap, whichever VfioPciDmaBufFile mapped it.
  AddressSpace mapping_;
};

}  // namespace vfiomm
