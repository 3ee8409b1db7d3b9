// Mutex and SpinLock: exclusion under real threads, ownership, trylock, and
// the checks they make without lockdep.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <latch>
#include <thread>
#include <vector>

#include "sync/lockdep.h"
#include "sync/mutex.h"
#include "sync/spin_lock.h"
#include "sync/thread_annotations.h"
#include "sync_test_support.h"

namespace vfiomm {
namespace {

using lockdep::ReportKind;

const LockClass kMutex{"&test->mutex"};
const LockClass kSpin{"&test->spin"};

class LocksTest : public SyncTest {};

// The assertion under test, out of the static analysis' sight.
void assertMutexHeld(const Mutex& m) { m.assertHeld(); }
void assertSpinHeld(const SpinLock& l) { l.assertHeld(); }

// Runs `body` kIterations times in each of kThreads threads started together,
// and counts the times two threads were inside at once.
template <typename Body>
int overlapsUnder(KernelContext& context, Body body) {
  constexpr int kThreads = 3;
  constexpr int kIterations = 3000;
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::barrier start(kThreads);
  std::vector<testing::BoundThread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back(context, [&] {
      start.arrive_and_wait();
      for (int n = 0; n < kIterations; ++n) {
        body([&] {
          if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
          inside.fetch_sub(1);
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  return overlaps.load();
}

TEST_F(LocksTest, MutexExcludes) {
  Mutex m(kMutex);
  long count = 0;  // guarded by m
  const int overlaps = overlapsUnder(context(), [&](auto critical) {
    MutexGuard g(m);
    critical();
    ++count;
  });
  EXPECT_EQ(overlaps, 0);
  EXPECT_EQ(count, 3 * 3000);
  EXPECT_FALSE(m.isLocked());
}

TEST_F(LocksTest, SpinLockExcludes) {
  SpinLock l(kSpin);
  long count = 0;  // guarded by l
  const int overlaps = overlapsUnder(context(), [&](auto critical) {
    SpinGuard g(l);
    critical();
    ++count;
  });
  EXPECT_EQ(overlaps, 0);
  EXPECT_EQ(count, 3 * 3000);
  EXPECT_FALSE(l.isLocked());
}

TEST_F(LocksTest, MutexKnowsItsOwner) {
  Mutex m(kMutex);
  EXPECT_FALSE(m.heldByCurrent());
  MutexGuard g(m);
  EXPECT_TRUE(m.isLocked());
  EXPECT_TRUE(m.heldByCurrent());
  bool otherSeesHeld = true;
  bool otherSeesLocked = false;
  bool otherTrylock = true;
  testing::BoundThread(context(), [&] {
    otherSeesHeld = m.heldByCurrent();
    otherSeesLocked = m.isLocked();
    otherTrylock = tryLockSucceeds(m);
  }).join();
  EXPECT_FALSE(otherSeesHeld);
  EXPECT_TRUE(otherSeesLocked);
  EXPECT_FALSE(otherTrylock);
}

TEST_F(LocksTest, TrylockTakesAFreeLock) {
  Mutex m(kMutex);
  SpinLock l(kSpin);
  if (m.tryLock()) {
    EXPECT_TRUE(m.heldByCurrent());
    EXPECT_TRUE(lockdep::isHeld(&m));
    m.unlock();
  } else {
    ADD_FAILURE() << "trylock of a free mutex failed";
  }
  if (l.tryLock()) {
    EXPECT_FALSE(tryLockSucceeds(l));
    EXPECT_TRUE(lockdep::isHeld(&l));
    l.unlock();
  } else {
    ADD_FAILURE() << "trylock of a free spinlock failed";
  }
  EXPECT_FALSE(m.isLocked());
  EXPECT_FALSE(l.isLocked());
  EXPECT_TRUE(lockdep::heldLocks().empty());
}

// The test's mutex passes in and out of unlockAndSteal(), which the
// analysis cannot follow.
void takeMutex(Mutex& m) NO_THREAD_SAFETY_ANALYSIS { m.lock(); }
void releaseMutex(Mutex& m) NO_THREAD_SAFETY_ANALYSIS { m.unlock(); }
// Releases and takes the mutex back before any sleeper could run: whether
// it could be stolen so.
bool unlockAndSteal(Mutex& m) NO_THREAD_SAFETY_ANALYSIS {
  m.unlock();
  return m.tryLock();
}

// MUTEX_FLAG_HANDOFF: a waiter woken once only to find the mutex taken again
// reserves it; the holder's next release cannot be followed by a steal.
TEST_F(LocksTest, AMutexWaiterPassedOnceReservesTheLock) {
  GatedWaitHook hook;
  setSchedHook(&hook);
  Mutex m(kMutex);
  std::atomic<bool> waiterIn{false};
  takeMutex(m);
  testing::BoundThread waiter(context(), [&] {
    MutexGuard g(m);
    waiterIn.store(true);
  });
  hook.awaitWaits(1);
  EXPECT_TRUE(unlockAndSteal(m)) << "no handoff yet: the release may be stolen";
  hook.open(1);        // wakes to find the mutex taken: one loss
  hook.awaitWaits(2);  // asleep again, with the handoff
  const bool stolen = unlockAndSteal(m);
  EXPECT_FALSE(stolen) << "the release was stolen from the reserved waiter";
  if (stolen) releaseMutex(m);
  hook.open(1 << 30);
  waiter.join();
  EXPECT_TRUE(waiterIn.load());
  EXPECT_TRUE(tryLockSucceeds(m)) << "the handoff outlived its waiter";
  EXPECT_FALSE(m.isLocked());
}

TEST_F(LocksTest, WithoutLockdepMutexAssertionsCheckTheOwner) {
  lockdep::setEnabled(false);
  Mutex m(kMutex);
  m.lock();
  m.assertHeld();
  m.assertNotHeld();  // fails: this thread owns it
  testing::BoundThread(context(), [&] {
    assertMutexHeld(m);  // fails: another thread owns it
    m.assertNotHeld();
  }).join();
  m.unlock();
  assertMutexHeld(m);  // fails: nobody owns it
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertNotHeld), 1U);
  ASSERT_EQ(lockdep::reportCount(ReportKind::kAssertHeld), 2U);
  const auto reports = lockdep::reports();
  EXPECT_NE(reports.at(1).text.find("lock not held: &test->mutex (owned by another task)\n"),
            std::string::npos);
  EXPECT_NE(reports.at(2).text.find("lock not held: &test->mutex (not locked)\n"),
            std::string::npos);
}

TEST_F(LocksTest, WithoutLockdepSpinAssertionChecksTheWord) {
  lockdep::setEnabled(false);
  SpinLock l(kSpin);
  assertSpinHeld(l);
  std::latch held(1);
  std::latch leave(1);
  testing::BoundThread holder(context(), [&] {
    SpinGuard g(l);
    held.count_down();
    leave.wait();
  });
  held.wait();
  assertSpinHeld(l);  // assert_spin_locked(): locked by anyone will do
  leave.count_down();
  holder.join();
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeld), 1U);
}

TEST_F(LocksTest, WithLockdepAssertionsArePerThread) {
  Mutex m(kMutex);
  SpinLock l(kSpin);
  {
    MutexGuard gm(m);
    SpinGuard gl(l);
    m.assertHeld();
    l.assertHeld();
    testing::BoundThread(context(), [&] {
      assertMutexHeld(m);
      assertSpinHeld(l);
    }).join();
  }
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeld), 2U);
}

TEST_F(LocksTest, NestedSubclassesOfOneClassAreNotRecursion) {
  Mutex outer(kMutex);
  Mutex inner(kMutex);
  SpinLock a(kSpin);
  SpinLock b(kSpin);
  {
    MutexGuard go(outer);
    inner.lockNested(1);
    SpinGuard ga(a);
    SpinGuard gb(b, 1);
    inner.unlock();
  }
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

}  // namespace
}  // namespace vfiomm
