#include "dmabuf/dma_buf.h"

#include <algorithm>

namespace vfiomm {

DmaBuf::DmaBuf(std::shared_ptr<DmaBufOps> ops, uint64_t size) : ops_(std::move(ops)), size_(size) {}

DmaBuf::~DmaBuf() { ops_->release(); }

Result<std::shared_ptr<DmaBufAttachment>> DmaBuf::dynamicAttach(DmaBufAttachOps ops) {
  auto attachment = std::make_shared<DmaBufAttachment>(*this, std::move(ops));
  if (auto st = ops_->attach(*attachment); !st) return fail(st.error());
  MutexGuard g(resv_);
  attachments_.push_back(attachment);
  return attachment;
}

void DmaBuf::detach(const DmaBufAttachment& attachment) {
  MutexGuard g(resv_);
  attachments_.erase(std::remove_if(attachments_.begin(), attachments_.end(),
                                    [&](const auto& a) { return a.get() == &attachment; }),
                     attachments_.end());
}

void DmaBuf::moveNotify() {
  for (const auto& a : attachments_)
    if (a->importerOps().moveNotify) a->importerOps().moveNotify(*a);
}

}  // namespace vfiomm
