// The scheduling hook: every lock calls it before an acquisition that may
// block, while it waits, and after every release; model code calls
// schedPoint() where an interleaving matters. The default hook lets the OS
// schedule (waiting is a futex wait on the lock word). A deterministic
// scheduler installs its own hook and then decides which thread runs at each
// of these points, without any change to the code that takes the locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "sync/sync_context.h"

namespace vfiomm {

class SchedHook {
 public:
  virtual ~SchedHook() = default;

  // About to acquire `lock`, possibly blocking.
  virtual void beforeAcquire(const void* lock);
  // The acquisition of `lock` failed; wait until `word` may differ from
  // `observed`. Every lock's slow path goes through here.
  virtual void wait(const void* lock, const std::atomic<uint32_t>& word, uint32_t observed);
  // `lock` was released; `waiters` says whether a thread waits on `word`
  // and must be woken.
  virtual void afterRelease(const void* lock, std::atomic<uint32_t>& word, bool waiters);
  // A named point where another thread may run.
  virtual void schedPoint(std::string_view what);
  // A point inside a spin loop: the caller cannot progress until another
  // thread does, so a scheduler must run someone else here.
  virtual void spinPoint(std::string_view what);
  // From beginWaitLoop() to endWaitLoop() the calling thread loops only to
  // wait for another one (its work is done; it repeats it until something
  // else happens), so every point it passes is a spinPoint: what it does
  // there is not progress, and a scheduler runs the others first. Neither
  // call is a point itself.
  virtual void beginWaitLoop();
  virtual void endWaitLoop();
};

// The hook of the calling thread's kernel (the default one unless a
// scheduler set another; SyncContext).
SchedHook& schedHook();
// Installs `hook` in the calling thread's kernel (nullptr restores the
// default); returns the previous one.
SchedHook* setSchedHook(SchedHook* hook);

// A named point costs a thread-local load and a predicted branch unless a
// scheduler is installed: the points sit on hot paths (the 4 KiB fault, the
// zap), and the default hook's schedPoint() does nothing. A thread bound to
// no kernel has no scheduler either.
inline void schedPoint(std::string_view what) {
  const SyncContext* context = SyncContext::bound();
  if (context != nullptr && context->scheduled()) [[unlikely]]
    context->schedHook().schedPoint(what);
}
inline void spinPoint(std::string_view what) { schedHook().spinPoint(what); }

// The calling thread's wait loop (SchedHook::beginWaitLoop), from enter()
// until the scope ends. Without a scheduler it does nothing.
class WaitLoopScope {
 public:
  WaitLoopScope() = default;
  WaitLoopScope(const WaitLoopScope&) = delete;
  WaitLoopScope& operator=(const WaitLoopScope&) = delete;
  ~WaitLoopScope() {
    if (hook_ != nullptr) hook_->endWaitLoop();
  }

  void enter() {
    const SyncContext* context = SyncContext::bound();
    if (hook_ != nullptr || context == nullptr || !context->scheduled()) return;
    hook_ = &context->schedHook();
    hook_->beginWaitLoop();
  }

 private:
  SchedHook* hook_ = nullptr;
};

}  // namespace vfiomm
