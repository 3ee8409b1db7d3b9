#include "iommufd/iopt_dmabuf_pages.h"

#include <algorithm>
#include <limits>

#include "base/page_geometry.h"
#include "iommu/iommu_domain.h"

namespace vfiomm {

namespace {

// MAX_NPFNS: a dma-buf area is one batch entry, whose page count is a u32.
constexpr uint64_t kMaxNpfns = std::numeric_limits<uint32_t>::max();

}  // namespace

IoptDmabufPages::IoptDmabufPages(std::shared_ptr<DmaBuf> dmabuf, uint64_t start)
    : dmabuf_(std::move(dmabuf)), start_(start) {}

Result<std::shared_ptr<IoptDmabufPages>> IoptDmabufPages::alloc(std::shared_ptr<DmaBuf> dmabuf,
                                                                uint64_t start, uint64_t length,
                                                                const DmaBufIommufdMap& map) {
  if (dmabuf->size() <= start + (length - 1) || length / kPageSize >= kMaxNpfns)
    return fail(Errno::kEINVAL);
  std::shared_ptr<IoptDmabufPages> pages(new IoptDmabufPages(std::move(dmabuf), start));
  if (auto st = pages->attach(map); !st) return fail(st.error());
  return pages;
}

Status IoptDmabufPages::attach(const DmaBufIommufdMap& map) {
  DmaBufAttachOps ops;
  ops.allowPeer2peer = true;
  // importer_priv: the attachment is detached before this object goes.
  ops.moveNotify = [this](DmaBufAttachment&) { revokeNotify(); };
  auto attachment = dmabuf_->dynamicAttach(std::move(ops));
  if (!attachment) return fail(attachment.error());
  Status st = ok();
  {
    MutexGuard resv(dmabuf_->resv());
    PhysVec phys;
    st = map ? map(**attachment, &phys) : fail(Errno::kEOPNOTSUPP);
    if (st) {
      MutexGuard g(mutex_);
      phys_ = phys;
    }
  }
  if (!st) {
    dmabuf_->detach(**attachment);
    return st;
  }
  attachment_ = std::move(*attachment);
  return ok();
}

IoptDmabufPages::~IoptDmabufPages() {
  if (attachment_ != nullptr) dmabuf_->detach(*attachment_);
}

Status IoptDmabufPages::fillDomain(IommuDomain& domain, uint64_t iova, uint64_t length, int prot) {
  MutexGuard g(mutex_);
  if (phys_.len == 0) {
    tracker_.push_back({&domain, iova, length});
    return ok();
  }
  if (auto st = domain.map(iova, phys_.paddr + start_, length, prot); !st) return st;
  tracker_.push_back({&domain, iova, length});
  return ok();
}

void IoptDmabufPages::unfillDomain(IommuDomain& domain, uint64_t iova, uint64_t length) {
  MutexGuard g(mutex_);
  tracker_.erase(
      std::remove_if(tracker_.begin(), tracker_.end(),
                     [&](const Track& t) { return t.domain == &domain && t.iova == iova; }),
      tracker_.end());
  domain.unmap(iova, length);
}

bool IoptDmabufPages::revoked() {
  MutexGuard g(mutex_);
  return phys_.len == 0;
}

void IoptDmabufPages::revokeNotify() {
  MutexGuard g(mutex_);
  if (phys_.len == 0) return;  // un-revoke and repeated revokes change nothing here
  for (const Track& t : tracker_) t.domain->unmap(t.iova, t.length);
  phys_.len = 0;
}

}  // namespace vfiomm
