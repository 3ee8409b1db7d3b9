// IoptDmabufPages: the pages of an IOAS area that maps a dma-buf (struct
// iopt_pages of type IOPT_ADDRESS_DMABUF, drivers/iommu/iommufd/pages.c,
// v6.19; dma-mapping.md §4.3). Nothing is pinned or accounted: the
// exporter hands over one physical range (a vfio BAR slice) through a
// private interconnect, and every domain of the area maps that range.
//
// The attachment is dynamic, with a revoke callback: when the exporter
// revokes the buffer, every IOPTE of the area is unmapped from every domain
// that was filled with it (the tracker), and the pages stay revoked for
// good — a later un-revoke does not map them again; user space unmaps the
// area and maps the buffer anew. A domain added after the revoke gets
// nothing. The IOVA range stays allocated throughout.
//
// Locks: the revoke runs under the exporter's locks and the buffer's
// reservation lock, and takes only this object's mutex (its own lockdep
// class in the kernel, pages_dmabuf_mutex_key) and the domains' page-table
// locks — never the IOAS's iova_rwsem.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/addr.h"
#include "base/result.h"
#include "dmabuf/dma_buf.h"
#include "sync/mutex.h"

namespace vfiomm {

class IommuDomain;

inline const LockClass kIoptPagesDmabufLockClass{"pages_dmabuf_mutex_key"};

// struct phys_vec: one physically contiguous range.
struct PhysVec {
  PhysAddr paddr;
  uint64_t len = 0;
};

// vfio_pci_dma_buf_iommufd_map(), which iommufd finds at run time
// (symbol_get): the buffer's one physical range, or -EOPNOTSUPP (not a
// vfio-pci buffer, or more than one range) / -ENODEV (revoked). Called
// with the reservation lock held. Empty when the kernel has no vfio-pci
// dma-buf support (CONFIG_VFIO_PCI_DMABUF off): then -EOPNOTSUPP.
using DmaBufIommufdMap = std::function<Status(DmaBufAttachment&, PhysVec*)>;

class IoptDmabufPages {
 public:
  // iopt_alloc_dmabuf_pages(): bytes [start, start + length) of `dmabuf`.
  // -EINVAL: past the buffer's end; then the attach's and the private
  // interconnect's errors.
  static Result<std::shared_ptr<IoptDmabufPages>> alloc(std::shared_ptr<DmaBuf> dmabuf,
                                                        uint64_t start, uint64_t length,
                                                        const DmaBufIommufdMap& map);
  // iopt_release_pages(): detached, the buffer's reference put. Must run
  // with no iommufd lock held (the detach takes the reservation lock).
  ~IoptDmabufPages();
  IoptDmabufPages(const IoptDmabufPages&) = delete;
  IoptDmabufPages& operator=(const IoptDmabufPages&) = delete;

  // iopt_area_fill_domain() for the area at `iova`: the domain is tracked,
  // and mapped unless the buffer was revoked.
  Status fillDomain(IommuDomain& domain, uint64_t iova, uint64_t length, int prot) EXCLUDES(mutex_);
  // iopt_area_unfill_domain(): untracked and unmapped.
  void unfillDomain(IommuDomain& domain, uint64_t iova, uint64_t length) EXCLUDES(mutex_);
  // iopt_dmabuf_revoked().
  bool revoked() EXCLUDES(mutex_);

 private:
  struct Track {
    IommuDomain* domain = nullptr;
    uint64_t iova = 0;
    uint64_t length = 0;
  };

  IoptDmabufPages(std::shared_ptr<DmaBuf> dmabuf, uint64_t start);
  // iopt_map_dmabuf(): attach, then the range under the reservation lock.
  Status attach(const DmaBufIommufdMap& map) EXCLUDES(mutex_);
  // iopt_revoke_notify(), the attachment's move_notify.
  void revokeNotify() EXCLUDES(mutex_);

  const std::shared_ptr<DmaBuf> dmabuf_;  // dma_buf_get()'s reference
  const uint64_t start_;                  // the area's first byte in the buffer
  std::shared_ptr<DmaBufAttachment> attachment_;
  Mutex mutex_{kIoptPagesDmabufLockClass};
  PhysVec phys_ GUARDED_BY(mutex_);  // len 0 once revoked
  std::vector<Track> tracker_ GUARDED_BY(mutex_);
};

}  // namespace vfiomm
