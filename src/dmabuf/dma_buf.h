// DmaBuf: the dma-buf core (drivers/dma-buf/dma-buf.c) between an exporter
// that owns some memory and the importers that map it for their devices
// (dma-mapping.md §4). The exporter's dma_buf_ops are a DmaBufOps object,
// which is also its private data (dmabuf->priv); each importer attaches
// with its own callbacks. The reservation object's lock (dma_resv) orders
// a move or revoke against the importers' mappings.
//
// Modelled: export, dynamic attach/detach, move_notify, release at the last
// reference. Not modelled: sg tables and dma_buf_map_attachment (the only
// importer, iommufd, takes the physical range through vfio's private
// interconnect), fences, vmap. mmap goes straight to the exporter: only
// vfio's, under a proposal (VfioPciDmaBufFile), has the op.
//
// A DmaBuf is held by shared_ptr: the fds that name it (its struct file)
// and the importers that took a reference (dma_buf_get). Its destructor is
// the last fput's dma_buf_release(): the exporter's release() runs first,
// while the object is still whole, so an exporter walking its buffers
// under its own lock never sees one half gone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/result.h"
#include "sync/mutex.h"

namespace vfiomm {

class DmaBuf;
class DmaBufAttachment;

// dma_resv's ww_mutex (every reservation object shares one class).
inline const LockClass kDmaResvLockClass{"reservation_ww_class_mutex"};

// struct dma_buf_ops, the ops the model's exporter has.
class DmaBufOps {
 public:
  virtual ~DmaBufOps() = default;
  // ->attach(): the exporter may refuse an importer.
  virtual Status attach(DmaBufAttachment& attachment) = 0;
  // ->release(): the last reference is gone.
  virtual void release() = 0;
};

// struct dma_buf_attach_ops: what a dynamic importer gives.
struct DmaBufAttachOps {
  bool allowPeer2peer = false;
  // ->move_notify(): the buffer moved (for vfio: was revoked or restored);
  // called with the reservation lock held.
  std::function<void(DmaBufAttachment&)> moveNotify;
};

// struct dma_buf_attachment.
class DmaBufAttachment {
 public:
  DmaBufAttachment(DmaBuf& dmabuf, DmaBufAttachOps ops) : dmabuf_(dmabuf), ops_(std::move(ops)) {}
  DmaBufAttachment(const DmaBufAttachment&) = delete;
  DmaBufAttachment& operator=(const DmaBufAttachment&) = delete;

  DmaBuf& dmabuf() const { return dmabuf_; }
  // attach->peer2peer: the importer can reach memory that is not RAM.
  bool peer2peer() const { return ops_.allowPeer2peer; }
  const DmaBufAttachOps& importerOps() const { return ops_; }

 private:
  DmaBuf& dmabuf_;
  const DmaBufAttachOps ops_;
};

class DmaBuf {
 public:
  // dma_buf_export(): `ops` is the exporter's object, `size` bytes.
  DmaBuf(std::shared_ptr<DmaBufOps> ops, uint64_t size);
  // dma_buf_release() at the last reference.
  ~DmaBuf();
  DmaBuf(const DmaBuf&) = delete;
  DmaBuf& operator=(const DmaBuf&) = delete;

  uint64_t size() const { return size_; }
  // dmabuf->ops and dmabuf->priv: an importer that knows the exporter may
  // check its type (vfio's private interconnect does).
  DmaBufOps& ops() const { return *ops_; }
  // dmabuf->resv's lock.
  Mutex& resv() RETURN_CAPABILITY(resv_) { return resv_; }

  // dma_buf_dynamic_attach(): the exporter's attach, then the attachment
  // is listed. Its error is the call's.
  Result<std::shared_ptr<DmaBufAttachment>> dynamicAttach(DmaBufAttachOps ops) EXCLUDES(resv_);
  // dma_buf_detach().
  void detach(const DmaBufAttachment& attachment) EXCLUDES(resv_);
  // dma_buf_move_notify(): every importer's move_notify.
  void moveNotify() REQUIRES(resv_);

 private:
  const std::shared_ptr<DmaBufOps> ops_;
  const uint64_t size_;
  Mutex resv_{kDmaResvLockClass};
  std::vector<std::shared_ptr<DmaBufAttachment>> attachments_ GUARDED_BY(resv_);
};

}  // namespace vfiomm
