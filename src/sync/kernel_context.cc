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
  CounterSet::bind(&context->counters_);
  trace::Tracer::bind(&context->tracer_);
  SyncContext::bind(&context->sync_);
  return true;
}

void KernelContext::release(const KernelContext& context) {
  if (tAdopted.get() != &context || SyncContext::bound() != &context.sync_) return;
  CounterSet::bind(nullptr);
  trace::Tracer::bind(nullptr);
  SyncContext::bind(nullptr);
  tAdopted.reset();
}

}  // namespace vfiomm
