#include "sync/sync_context.h"

#include <cstdio>

#include "base/assert.h"
#include "sync/lockdep_state.h"
#include "sync/sched_hook.h"

namespace vfiomm {
namespace {

// The hook of a kernel nobody schedules: it has no state, so one serves all.
SchedHook defaultHook;

void printToStderr(const lockdep::Report& r) { std::fputs(r.text.c_str(), stderr); }

}  // namespace

SyncContext::SyncContext() : hook_(&defaultHook), lockdep_(std::make_unique<lockdep::State>()) {
  lockdep_->log.sink = printToStderr;
}

SyncContext::~SyncContext() = default;

SyncContext* SyncContext::bind(SyncContext* context) {
  SyncContext* previous = tCurrent;
  tCurrent = context;
  return previous;
}

SchedHook* SyncContext::setSchedHook(SchedHook* hook) {
  scheduled_.store(hook != nullptr, std::memory_order_relaxed);
  return hook_.exchange(hook != nullptr ? hook : &defaultHook, std::memory_order_acq_rel);
}

void SyncContext::hookBeforeAcquire(const void* lock) { schedHook().beforeAcquire(lock); }

void SyncContext::hookAfterRelease(const void* lock, std::atomic<uint32_t>& word, bool waiters) {
  schedHook().afterRelease(lock, word, waiters);
}

void SyncContext::unbound() {
  assertFailed("SyncContext::current() != nullptr",
               "a model lock was taken on a thread bound to no kernel (KernelContext::Scope)",
               SourceLocation::current());
}

}  // namespace vfiomm
