#include "sync/mutex.h"

#include <fmt/format.h>

#include "base/assert.h"
#include "sync/lock_trace.h"
#include "sync/lockdep.h"
#include "sync/sched_hook.h"
#include "sync/sync_context.h"

namespace vfiomm {
namespace {

// The lock word, as in Drepper's "Futexes Are Tricky" mutex: once contended
// it stays kLocked | kWaiters until the next release, so the releaser knows
// it must wake someone without counting the waiters. kHandoff is
// MUTEX_FLAG_HANDOFF: a waiter woken only to find the lock taken again
// reserves it, and until that waiter has had it nobody else may take it;
// the release keeps the bit.
constexpr uint32_t kLocked = 1u << 0;
constexpr uint32_t kWaiters = 1u << 1;
constexpr uint32_t kHandoff = 1u << 2;

// Who owns the mutex, as the kernel's owner field holds the task_struct: the
// address of a per-thread object, unique among live threads and never 0.
uint64_t currentTaskId() {
  thread_local const char self = 0;
  return reinterpret_cast<uintptr_t>(&self);
}

}  // namespace

void Mutex::lock(SourceLocation where) { lockNested(0, where); }

void Mutex::lockNested(unsigned subclass, SourceLocation where) {
  const uint64_t traced = lock_trace::begin();
  SyncContext::current().beforeAcquire(this);
  if (lockdep::enabled())
    lockdep::acquire(this, cls_, subclass, lockdep::Mode::kExclusive, false, where);
  uint32_t expected = 0;
  uint8_t flags = trace::eventflag::kWrite;
  if (!word_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
    lockSlow();
    flags |= trace::eventflag::kContended;
  }
  owner_.store(currentTaskId(), std::memory_order_relaxed);
  lock_trace::acquired(traced, this, cls_, flags);
}

// Linux's first waiter asks for the handoff as soon as one wake-up found the
// lock stolen (__mutex_trylock_or_handoff); the model has no wait queue, so
// any waiter may, one at a time.
void Mutex::lockSlow() {
  uint32_t w = word_.load(std::memory_order_relaxed);
  bool handoff = false;  // this waiter reserved the lock
  for (bool woken = false;;) {
    if ((w & kLocked) == 0 && (handoff || (w & kHandoff) == 0)) {
      // Taken as contended: others may sleep on the word.
      if (word_.compare_exchange_weak(w, kLocked | kWaiters, std::memory_order_acquire,
                                      std::memory_order_relaxed))
        return;
      continue;
    }
    const bool claim = woken && !handoff && (w & kHandoff) == 0;
    const uint32_t want = w | kWaiters | (claim ? kHandoff : 0);
    if (want != w) {
      if (!word_.compare_exchange_weak(w, want, std::memory_order_relaxed)) continue;
      if (claim) {
        handoff = true;  // the release may already have happened: look again
        w = want;
        continue;
      }
    }
    schedHook().wait(this, word_, want);
    woken = true;
    w = word_.load(std::memory_order_relaxed);
  }
}

bool Mutex::tryLock(SourceLocation where) {
  const uint64_t traced = lock_trace::begin();
  constexpr uint8_t kFlags = trace::eventflag::kWrite | trace::eventflag::kTry;
  uint32_t expected = 0;
  if (!word_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
    lock_trace::acquired(traced, this, cls_, kFlags | trace::eventflag::kFailed);
    return false;
  }
  owner_.store(currentTaskId(), std::memory_order_relaxed);
  if (lockdep::enabled()) lockdep::acquire(this, cls_, 0, lockdep::Mode::kExclusive, true, where);
  lock_trace::acquired(traced, this, cls_, kFlags);
  return true;
}

void Mutex::unlock(SourceLocation where) {
  lock_trace::released(this, cls_, true);
  if (lockdep::enabled()) lockdep::release(this, cls_, where);
  owner_.store(0, std::memory_order_relaxed);
  const uint32_t prev = word_.fetch_and(kHandoff, std::memory_order_release);
  VFIOMM_ASSERT_MSG((prev & kLocked) != 0, "mutex_unlock() of an unlocked mutex");
  SyncContext::current().afterRelease(this, word_, (prev & kWaiters) != 0);
}

void Mutex::assertHeld(SourceLocation where) const {
  if (lockdep::enabled()) {
    lockdep::assertHeld(this, cls_, where);
    return;
  }
  if (heldByCurrent()) return;
  lockdep::warn(lockdep::ReportKind::kAssertHeld, cls_,
                fmt::format("lock not held: {} ({})", cls_.name(),
                            isLocked() ? "owned by another task" : "not locked"),
                where);
}

void Mutex::assertNotHeld(SourceLocation where) const {
  if (lockdep::enabled()) {
    lockdep::assertNotHeld(this, cls_, where);
    return;
  }
  if (!heldByCurrent()) return;
  lockdep::warn(lockdep::ReportKind::kAssertNotHeld, cls_,
                fmt::format("lock held but must not be: {} (owned by this task)", cls_.name()),
                where);
}

bool Mutex::isLocked() const { return (word_.load(std::memory_order_relaxed) & kLocked) != 0; }

// Only this thread stores its own id, so a relaxed load that sees it is exact.
bool Mutex::heldByCurrent() const {
  return owner_.load(std::memory_order_relaxed) == currentTaskId();
}

}  // namespace vfiomm
