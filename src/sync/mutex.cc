#include "sync/mutex.h"

#include <fmt/format.h>

#include "base/assert.h"
#include "sync/lock_trace.h"
#include "sync/lockdep.h"
#include "sync/sched_hook.h"

namespace vfiomm {
namespace {

// The lock word, as in Drepper's "Futexes Are Tricky" mutex: once contended
// it stays kLocked | kWaiters until the next release, so the releaser knows
// it must wake someone without counting the waiters.
constexpr uint32_t kLocked = 1u << 0;
constexpr uint32_t kWaiters = 1u << 1;

// A small per-thread number; 0 means "no owner".
uint64_t currentTaskId() {
  static std::atomic<uint64_t> next{1};
  thread_local const uint64_t id = next.fetch_add(1, std::memory_order_relaxed);
  return id;
}

}  // namespace

void Mutex::lock(SourceLocation where) { lockNested(0, where); }

void Mutex::lockNested(unsigned subclass, SourceLocation where) {
  const uint64_t traced = lock_trace::begin();
  schedHook().beforeAcquire(this);
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

void Mutex::lockSlow() {
  while ((word_.exchange(kLocked | kWaiters, std::memory_order_acquire) & kLocked) != 0)
    schedHook().wait(this, word_, kLocked | kWaiters);
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
  const uint32_t prev = word_.exchange(0, std::memory_order_release);
  VFIOMM_ASSERT_MSG((prev & kLocked) != 0, "mutex_unlock() of an unlocked mutex");
  schedHook().afterRelease(this, word_, (prev & kWaiters) != 0);
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
