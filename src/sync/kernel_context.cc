#include "sync/kernel_context.h"

namespace vfiomm {
namespace {

// The context adopt() bound to this thread, kept alive until released or
// until the thread ends.
thread_local std::shared_ptr<KernelContext> tAdopted;

}  // namespace

bool KernelContext::adopt(const std::shared_ptr<KernelContext>& context) {
  if (SyncContext::bound() != nullptr) return false;
  tAdopted = context;
  bindLayers(&context->counters_, &context->tracer_, &context->sync_);
  return true;
}

void KernelContext::release(const KernelContext& context) {
  if (tAdopted.get() != &context || SyncContext::bound() != &context.sync_) return;
  bindLayers(nullptr, nullptr, nullptr);
  tAdopted.reset();
}

}  // namespace vfiomm
