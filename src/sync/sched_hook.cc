#include "sync/sched_hook.h"

#include "sync/sync_context.h"

namespace vfiomm {

void SchedHook::beforeAcquire(const void* /*lock*/) {}

void SchedHook::wait(const void* /*lock*/, const std::atomic<uint32_t>& word, uint32_t observed) {
  // The caller re-reads the word with the ordering it needs after waking.
  word.wait(observed, std::memory_order_relaxed);
}

void SchedHook::afterRelease(const void* /*lock*/, std::atomic<uint32_t>& word, bool waiters) {
  // Every waiter re-checks the word, so waking them all is correct; the lock
  // types only pass `waiters` when someone may actually sleep on the word.
  if (waiters) word.notify_all();
}

void SchedHook::schedPoint(std::string_view /*what*/) {}

void SchedHook::spinPoint(std::string_view /*what*/) {}

void SchedHook::beginWaitLoop() {}

void SchedHook::endWaitLoop() {}

SchedHook& schedHook() { return SyncContext::current().schedHook(); }

SchedHook* setSchedHook(SchedHook* hook) { return SyncContext::current().setSchedHook(hook); }

}  // namespace vfiomm
