#include "sync/spin_lock.h"

#include <fmt/format.h>

#include "base/assert.h"
#include "sync/lockdep.h"
#include "sync/sched_hook.h"
#include "sync/sync_context.h"

namespace vfiomm {
namespace {

// The same word as Mutex's: kLocked, and kWaiters once a thread sleeps on it.
constexpr uint32_t kLocked = 1u << 0;
constexpr uint32_t kWaiters = 1u << 1;
// A spinlock is held for a few instructions, so a contender first spins on
// the word; past this it sleeps through the hook, which lets a deterministic
// scheduler run the holder (and bounds the spin on an over-committed host).
constexpr unsigned kSpinTries = 64;

void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

void SpinLock::lock(SourceLocation where) { lockNested(0, where); }

void SpinLock::lockNested(unsigned subclass, SourceLocation where) {
  SyncContext::current().beforeAcquire(this);
  if (lockdep::enabled())
    lockdep::acquire(this, *cls_, subclass, lockdep::Mode::kExclusive, false, where);
  uint32_t expected = 0;
  if (!word_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                     std::memory_order_relaxed))
    lockSlow();
}

void SpinLock::lockSlow() {
  for (unsigned i = 0; i < kSpinTries; ++i) {
    cpuRelax();
    uint32_t expected = 0;
    if (word_.load(std::memory_order_relaxed) == 0 &&
        word_.compare_exchange_weak(expected, kLocked, std::memory_order_acquire,
                                    std::memory_order_relaxed))
      return;
  }
  while ((word_.exchange(kLocked | kWaiters, std::memory_order_acquire) & kLocked) != 0)
    schedHook().wait(this, word_, kLocked | kWaiters);
}

bool SpinLock::tryLock(SourceLocation where) {
  uint32_t expected = 0;
  if (!word_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                     std::memory_order_relaxed))
    return false;
  if (lockdep::enabled()) lockdep::acquire(this, *cls_, 0, lockdep::Mode::kExclusive, true, where);
  return true;
}

void SpinLock::unlock(SourceLocation where) {
  if (lockdep::enabled()) lockdep::release(this, *cls_, where);
  const uint32_t prev = word_.exchange(0, std::memory_order_release);
  VFIOMM_ASSERT_MSG((prev & kLocked) != 0, "spin_unlock() of an unlocked spinlock");
  SyncContext::current().afterRelease(this, word_, (prev & kWaiters) != 0);
}

// Without lockdep, assert_spin_locked(): locked by anyone.
void SpinLock::assertHeld(SourceLocation where) const {
  if (lockdep::enabled()) {
    lockdep::assertHeld(this, *cls_, where);
    return;
  }
  if (isLocked()) return;
  lockdep::warn(lockdep::ReportKind::kAssertHeld, *cls_,
                fmt::format("lock not held: {} (not locked)", cls_->name()), where);
}

bool SpinLock::isLocked() const { return (word_.load(std::memory_order_relaxed) & kLocked) != 0; }

}  // namespace vfiomm
