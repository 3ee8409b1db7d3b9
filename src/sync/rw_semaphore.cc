#include "sync/rw_semaphore.h"

#include <fmt/format.h>

#include "base/assert.h"
#include "sync/lock_trace.h"
#include "sync/lockdep.h"
#include "sync/sched_hook.h"
#include "sync/sync_context.h"

namespace vfiomm {
namespace {

// The lock word:
//   bit 0       kWriter: write-locked
//   bit 1       kWaiters: a thread may sleep on the word; the release that
//               clears it wakes everyone, and sleepers set it again
//   bit 2       kHandoff: RWSEM_FLAG_HANDOFF — a waiter that lost the lock
//               too often reserved it: nobody else may take it until that
//               waiter has
//   bits 3..15  waiting writers, counted so that new readers queue behind
//               every one of them, not only the first (writer preference)
//   bits 16..31 readers holding the lock
constexpr uint32_t kWriter = 1u << 0;
constexpr uint32_t kWaiters = 1u << 1;
constexpr uint32_t kHandoff = 1u << 2;
constexpr uint32_t kWriterWaiting = 1u << 3;
constexpr uint32_t kWriterWaitingMask = 0xfff8u;
constexpr uint32_t kReaderShift = 16;
constexpr uint32_t kReader = 1u << kReaderShift;

// A new reader may not pass a writer that holds or waits for the lock, nor a
// reserved handoff. Since readers only ever wait for writers, a read trylock
// that checks this fails whenever anyone waits, as Linux's does.
constexpr uint32_t kReadBlocked = kWriter | kHandoff | kWriterWaitingMask;

// Linux sets RWSEM_FLAG_HANDOFF once the first waiter has waited
// RWSEM_WAIT_TIMEOUT (a few ms) and was still passed by lock stealers, so a
// stream of writers cannot starve a reader (or writer) for ever. The model
// has no clock: a waiter reserves the lock after it was woken this many
// times and found it taken again.
constexpr unsigned kHandoffAfterLosses = 4;

uint32_t readers(uint32_t word) { return word >> kReaderShift; }

}  // namespace

void RwSemaphore::downRead(Loc where) {
  const uint64_t traced = lock_trace::begin();
  SyncContext::current().beforeAcquire(this);
  if (lockdep::enabled()) lockdep::acquire(this, cls_, 0, lockdep::Mode::kShared, false, where);
  uint32_t w = word_.load(std::memory_order_relaxed);
  uint8_t flags = 0;
  if ((w & kReadBlocked) != 0 ||
      !word_.compare_exchange_strong(w, w + kReader, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
    downReadSlow();
    flags = trace::eventflag::kContended;
  }
  lock_trace::acquired(traced, this, cls_, flags);
}

void RwSemaphore::downReadSlow() {
  uint32_t w = word_.load(std::memory_order_relaxed);
  bool handoff = false;  // this waiter reserved the lock
  for (unsigned losses = 0;;) {
    // With the handoff ours, only a writer holding the lock keeps us out:
    // waiting writers queue behind us.
    const bool free = handoff ? (w & kWriter) == 0 : (w & kReadBlocked) == 0;
    if (free) {
      if (word_.compare_exchange_weak(w, (w + kReader) & ~kHandoff, std::memory_order_acquire,
                                      std::memory_order_relaxed))
        return;
      continue;
    }
    if (!waitForWord(w, losses, handoff)) continue;
    w = word_.load(std::memory_order_relaxed);
  }
}

bool RwSemaphore::waitForWord(uint32_t& w, unsigned& losses, bool& handoff) {
  const bool claim = !handoff && losses >= kHandoffAfterLosses && (w & kHandoff) == 0;
  const uint32_t want = w | kWaiters | (claim ? kHandoff : 0);
  if (want != w) {
    if (!word_.compare_exchange_weak(w, want, std::memory_order_relaxed)) return false;
    if (claim) {
      // Reserved: what kept us out may not keep the owner out (a writer
      // that only waits), so look again before sleeping.
      handoff = true;
      w = want;
      return false;
    }
  }
  schedHook().wait(this, word_, want);
  ++losses;
  return true;
}

bool RwSemaphore::downReadTrylock(Loc where) {
  const uint64_t traced = lock_trace::begin();
  uint32_t w = word_.load(std::memory_order_relaxed);
  while ((w & kReadBlocked) == 0) {
    if (word_.compare_exchange_weak(w, w + kReader, std::memory_order_acquire,
                                    std::memory_order_relaxed)) {
      if (lockdep::enabled()) lockdep::acquire(this, cls_, 0, lockdep::Mode::kShared, true, where);
      lock_trace::acquired(traced, this, cls_, trace::eventflag::kTry);
      return true;
    }
  }
  lock_trace::acquired(traced, this, cls_, trace::eventflag::kTry | trace::eventflag::kFailed);
  return false;
}

void RwSemaphore::upRead(Loc where) {
  lock_trace::released(this, cls_, false);
  if (lockdep::enabled()) lockdep::release(this, cls_, where);
  // Only the last reader can let anyone in (readers wait only for writers),
  // so only it clears kWaiters and wakes the sleepers.
  uint32_t w = word_.load(std::memory_order_relaxed);
  uint32_t next = 0;
  do {
    VFIOMM_ASSERT_MSG(readers(w) != 0, "up_read() of an rwsem not held for read");
    next = w - kReader;
    if (readers(next) == 0) next &= ~kWaiters;
  } while (
      !word_.compare_exchange_weak(w, next, std::memory_order_release, std::memory_order_relaxed));
  SyncContext::current().afterRelease(this, word_, readers(next) == 0 && (w & kWaiters) != 0);
}

void RwSemaphore::downWrite(Loc where) { downWriteNested(0, where); }

void RwSemaphore::downWriteNested(unsigned subclass, Loc where) {
  const uint64_t traced = lock_trace::begin();
  SyncContext::current().beforeAcquire(this);
  if (lockdep::enabled())
    lockdep::acquire(this, cls_, subclass, lockdep::Mode::kExclusive, false, where);
  uint32_t expected = 0;
  uint8_t flags = trace::eventflag::kWrite;
  if (!word_.compare_exchange_strong(expected, kWriter, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
    downWriteSlow();
    flags |= trace::eventflag::kContended;
  }
  lock_trace::acquired(traced, this, cls_, flags);
}

void RwSemaphore::downWriteSlow() {
  uint32_t w = word_.fetch_add(kWriterWaiting, std::memory_order_relaxed) + kWriterWaiting;
  VFIOMM_ASSERT_MSG((w & kWriterWaitingMask) != 0, "too many writers waiting on an rwsem");
  bool handoff = false;  // this waiter reserved the lock
  for (unsigned losses = 0;;) {
    if ((w & kWriter) == 0 && readers(w) == 0 && (handoff || (w & kHandoff) == 0)) {
      if (word_.compare_exchange_weak(w, ((w - kWriterWaiting) | kWriter) & ~kHandoff,
                                      std::memory_order_acquire, std::memory_order_relaxed))
        return;
      continue;
    }
    if (!waitForWord(w, losses, handoff)) continue;
    w = word_.load(std::memory_order_relaxed);
  }
}

bool RwSemaphore::downWriteTrylock(Loc where) {
  const uint64_t traced = lock_trace::begin();
  constexpr uint8_t kFlags = trace::eventflag::kWrite | trace::eventflag::kTry;
  uint32_t expected = 0;
  if (!word_.compare_exchange_strong(expected, kWriter, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
    lock_trace::acquired(traced, this, cls_, kFlags | trace::eventflag::kFailed);
    return false;
  }
  if (lockdep::enabled()) lockdep::acquire(this, cls_, 0, lockdep::Mode::kExclusive, true, where);
  lock_trace::acquired(traced, this, cls_, kFlags);
  return true;
}

void RwSemaphore::upWrite(Loc where) {
  lock_trace::released(this, cls_, true);
  if (lockdep::enabled()) lockdep::release(this, cls_, where);
  const uint32_t prev = word_.fetch_and(~(kWriter | kWaiters), std::memory_order_release);
  VFIOMM_ASSERT_MSG((prev & kWriter) != 0, "up_write() of an rwsem not held for write");
  SyncContext::current().afterRelease(this, word_, (prev & kWaiters) != 0);
}

void RwSemaphore::downgradeWrite(Loc where) {
  if (lockdep::enabled()) lockdep::downgrade(this, cls_, where);
  // Sleeping readers may now join (unless a writer waits); wake them all.
  uint32_t w = word_.load(std::memory_order_relaxed);
  uint32_t next = 0;
  do {
    VFIOMM_ASSERT_MSG((w & kWriter) != 0, "downgrade_write() of an rwsem not held for write");
    next = (w & ~(kWriter | kWaiters)) + kReader;
  } while (
      !word_.compare_exchange_weak(w, next, std::memory_order_release, std::memory_order_relaxed));
  SyncContext::current().afterRelease(this, word_, (w & kWaiters) != 0);
}

// Without lockdep, rwsem_assert_held_nolockdep(): locked by anyone.
void RwSemaphore::assertHeld(Loc where) const {
  if (lockdep::enabled()) {
    lockdep::assertHeld(this, cls_, where);
    return;
  }
  if (isLocked()) return;
  lockdep::warn(lockdep::ReportKind::kAssertHeld, cls_,
                fmt::format("lock not held: {} (not locked)", cls_.name()), where);
}

// Without lockdep the kernel can only check that someone holds it.
void RwSemaphore::assertHeldRead(Loc where) const {
  if (lockdep::enabled()) {
    lockdep::assertHeldRead(this, cls_, where);
    return;
  }
  if (isLocked()) return;
  lockdep::warn(lockdep::ReportKind::kAssertHeldRead, cls_,
                fmt::format("lock not held for read: {} (not locked)", cls_.name()), where);
}

// Without lockdep, rwsem_assert_held_write_nolockdep(): write-locked by anyone.
void RwSemaphore::assertHeldWrite(Loc where) const {
  if (lockdep::enabled()) {
    lockdep::assertHeldWrite(this, cls_, where);
    return;
  }
  if (isWriteLocked()) return;
  lockdep::warn(lockdep::ReportKind::kAssertHeldWrite, cls_,
                fmt::format("lock not held for write: {} ({})", cls_.name(),
                            isLocked() ? "read-locked" : "not locked"),
                where);
}

// Without lockdep nothing tracks which thread holds a reader, so, as in the
// kernel, there is nothing to check.
void RwSemaphore::assertNotHeld(Loc where) const {
  if (lockdep::enabled()) lockdep::assertNotHeld(this, cls_, where);
}

bool RwSemaphore::isLocked() const {
  const uint32_t w = word_.load(std::memory_order_relaxed);
  return (w & kWriter) != 0 || readers(w) != 0;
}

bool RwSemaphore::isWriteLocked() const {
  return (word_.load(std::memory_order_relaxed) & kWriter) != 0;
}

}  // namespace vfiomm
