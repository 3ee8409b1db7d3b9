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
// Locks: memory_lock (write) then the buffer's reservation lock, for every
// change of `revoked`; attach reads it without a lock, as the kernel does.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.h"
#include "dmabuf/dma_buf.h"
#include "iommufd/iopt_dmabuf_pages.h"
#include "sync/thread_annotations.h"

namespace vfiomm {

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
  // vfio_pci_dma_buf_iommufd_map(): the private interconnect to iommufd
  // (DmaBufIommufdMap). The caller holds the reservation lock.
  static Status iommufdMap(DmaBufAttachment& attachment, PhysVec* phys);

  // dma_buf_ops.
  Status attach(DmaBufAttachment& attachment) override;  // needs P2P; -ENODEV when revoked
  void release() override;                               // off the device's list

  State state() const;
  const std::vector<PhysVec>& physVec() const { return physVec_; }

 private:
  // dma_buf_export() and the listing on the device: revoked from the start
  // when memory is not enabled.
  static std::shared_ptr<DmaBuf> exportBuffer(VfioPciCoreDevice& vdev, std::vector<PhysVec> phys,
                                              uint64_t length);
  // Under memory_lock (write): `revoked` set and the importers told, under
  // the reservation lock.
  void setRevoked(bool revoked);

  // priv->vdev: null once the device's last close detached the buffer.
  std::atomic<VfioPciCoreDevice*> vdev_;
  DmaBuf* dmabuf_ = nullptr;  // the DmaBuf that owns this object
  const std::vector<PhysVec> physVec_;
  std::atomic<bool> revoked_{false};
};

}  // namespace vfiomm
