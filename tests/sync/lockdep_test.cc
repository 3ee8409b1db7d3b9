#include "sync/lockdep.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <barrier>
#include <string>
#include <thread>
#include <vector>

#include "base/source_location.h"
#include "sync/mutex.h"
#include "sync/rw_semaphore.h"
#include "sync/spin_lock.h"
#include "sync_test_support.h"

namespace vfiomm {
namespace {

using Loc = SourceLocation;
using lockdep::ReportKind;

const LockClass kA{"&test->a"};
const LockClass kB{"&test->b"};
const LockClass kC{"&test->c"};
const LockClass kSem{"&test->sem"};

std::string at(const Loc& where) { return fmt::format("lockdep_test.cc:{}", where.line()); }

class LockdepTest : public SyncTest {};

// The wrong locking lockdep exists to catch; the static analysis would reject
// it at compile time, so it is kept out of its sight.
void readTwice(RwSemaphore& first, RwSemaphore& second, Loc where) NO_THREAD_SAFETY_ANALYSIS {
  first.downRead();
  second.downRead(where);
  second.upRead();
  first.upRead();
}
void writeTwice(RwSemaphore& first, RwSemaphore& second, Loc where) NO_THREAD_SAFETY_ANALYSIS {
  first.downWrite();
  second.downWrite(where);
  second.upWrite();
  first.upWrite();
}
void lockOnly(Mutex& m) NO_THREAD_SAFETY_ANALYSIS { m.lock(); }
void unlockOnly(Mutex& m, Loc where) NO_THREAD_SAFETY_ANALYSIS { m.unlock(where); }
// Asserting write on a lock held for read: the assertion is what is tested.
void assertWrite(const RwSemaphore& s, Loc where) { s.assertHeldWrite(where); }
void assertHeldOf(const RwSemaphore& s, Loc where) { s.assertHeld(where); }

TEST_F(LockdepTest, AbbaInTwoThreadsAtDifferentTimesIsCircular) {
  Mutex a(kA);
  Mutex b(kB);
  Loc t1a, t1b, t2b, t2a;
  testing::BoundThread(context(), [&] {
    lockdep::setThreadIdentity("t1", 101, 0);
    t1a = Loc::current();
    a.lock(t1a);
    t1b = Loc::current();
    b.lock(t1b);
    b.unlock();
    a.unlock();
  }).join();
  EXPECT_EQ(lockdep::reportCount(), 0U);

  testing::BoundThread(context(), [&] {
    lockdep::setThreadIdentity("t2", 202, 1);
    t2b = Loc::current();
    b.lock(t2b);
    t2a = Loc::current();
    a.lock(t2a);
    a.unlock();
    b.unlock();
  }).join();

  ASSERT_EQ(lockdep::reportCount(ReportKind::kCircularDependency), 1U);
  EXPECT_EQ(lockdep::reportCount(), 1U);
  EXPECT_TRUE(lockdep::hasDependency(kA, kB));
  EXPECT_TRUE(lockdep::hasDependency(kB, kA));
  const lockdep::Report r = lockdep::reports().at(0);
  EXPECT_EQ(r.kind, ReportKind::kCircularDependency);
  EXPECT_EQ(r.lockClass, "&test->a");
  const std::string expected = fmt::format(
      "======================================================\n"
      "WARNING: possible circular locking dependency detected\n"
      "------------------------------------------------------\n"
      "t2/202 is trying to acquire lock:\n"
      " (&test->a){{+.+.}}, at: {0}\n"
      "\n"
      "but task is already holding lock:\n"
      " (&test->b){{+.+.}}, at: {1}\n"
      "\n"
      "which lock already depends on the new lock.\n"
      "\n"
      "the existing dependency chain (in reverse order) is:\n"
      "\n"
      "-> #1 (&test->b){{+.+.}}:\n"
      "       first seen at {2} by t1/101 (after (&test->a) at {3})\n"
      "-> #0 (&test->a){{+.+.}}:\n"
      "       first seen at {0} by t2/202 (after (&test->b) at {1})\n"
      "\n"
      "other info that might help us debug this:\n"
      "\n"
      " Possible unsafe locking scenario:\n"
      "\n"
      "       CPU0                    CPU1\n"
      "       ----                    ----\n"
      "  lock(&test->b);\n"
      "                               lock(&test->a);\n"
      "                               lock(&test->b);\n"
      "  lock(&test->a);\n"
      "\n"
      " *** DEADLOCK ***\n"
      "\n"
      "1 lock held by t2/202:\n"
      " #0: (&test->b){{+.+.}}, at: {1}\n",
      at(t2a), at(t2b), at(t1b), at(t1a));
  EXPECT_EQ(r.text, expected);
  EXPECT_EQ(printed().size(), 1U);
}

TEST_F(LockdepTest, ThreeLockCycleIsCircular) {
  Mutex a(kA);
  Mutex b(kB);
  Mutex c(kC);
  {
    MutexGuard ga(a);
    MutexGuard gb(b);
  }
  {
    MutexGuard gb(b);
    MutexGuard gc(c);
  }
  EXPECT_EQ(lockdep::reportCount(), 0U);
  {
    MutexGuard gc(c);
    MutexGuard ga(a);
  }
  ASSERT_EQ(lockdep::reportCount(ReportKind::kCircularDependency), 1U);
  const std::string text = lockdep::reports().at(0).text;
  EXPECT_NE(text.find("Chain exists of:\n  &test->a --> &test->b --> &test->c\n"),
            std::string::npos);
  const size_t n2 = text.find("-> #2 (&test->c)");
  const size_t n1 = text.find("-> #1 (&test->b)");
  const size_t n0 = text.find("-> #0 (&test->a)");
  ASSERT_NE(n2, std::string::npos);
  ASSERT_NE(n1, std::string::npos);
  ASSERT_NE(n0, std::string::npos);
  EXPECT_LT(n2, n1);
  EXPECT_LT(n1, n0);
  EXPECT_NE(text.find("  lock(&test->c);\n"
                      "                               lock(&test->b);\n"
                      "                               lock(&test->c);\n"
                      "  lock(&test->a);\n"),
            std::string::npos);
}

TEST_F(LockdepTest, ConsistentOrderReportsNothing) {
  Mutex a(kA);
  SpinLock b(kB);
  RwSemaphore c(kC);
  constexpr int kThreads = 3;
  std::barrier start(kThreads);
  std::vector<testing::BoundThread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back(context(), [&] {
      start.arrive_and_wait();
      for (int n = 0; n < 200; ++n) {
        MutexGuard ga(a);
        if (n % 2 == 0) {
          SpinGuard gb(b);
          ReadGuard gc(c);
        } else {
          WriteGuard gc(c);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(lockdep::reportCount(), 0U);
  EXPECT_TRUE(lockdep::hasDependency(kA, kB));
  EXPECT_TRUE(lockdep::hasDependency(kB, kC));
  EXPECT_TRUE(lockdep::hasDependency(kA, kC));
  EXPECT_FALSE(lockdep::hasDependency(kB, kA));
  EXPECT_FALSE(lockdep::hasDependency(kC, kA));
}

TEST_F(LockdepTest, EachCycleIsReportedOnceUntilTheGraphIsReset) {
  Mutex a(kA);
  Mutex b(kB);
  for (int round = 0; round < 3; ++round) {
    {
      MutexGuard ga(a);
      MutexGuard gb(b);
    }
    {
      MutexGuard gb(b);
      MutexGuard ga(a);
    }
  }
  EXPECT_EQ(lockdep::reportCount(ReportKind::kCircularDependency), 1U);
  lockdep::resetGraph();
  EXPECT_FALSE(lockdep::hasDependency(kA, kB));
  {
    MutexGuard ga(a);
    MutexGuard gb(b);
  }
  {
    MutexGuard gb(b);
    MutexGuard ga(a);
  }
  EXPECT_EQ(lockdep::reportCount(ReportKind::kCircularDependency), 2U);
}

TEST_F(LockdepTest, TrylockAddsNoDependencyButIsTheSourceOfLaterOnes) {
  Mutex a(kA);
  Mutex b(kB);
  Mutex c(kC);
  {
    MutexGuard ga(a);
    if (b.tryLock()) {
      EXPECT_FALSE(lockdep::hasDependency(kA, kB));
      const std::vector<lockdep::HeldLock> held = lockdep::heldLocks();
      EXPECT_TRUE(held.size() == 2 && held[1].trylock);
      MutexGuard gc(c);
      EXPECT_TRUE(lockdep::hasDependency(kB, kC));
      EXPECT_TRUE(lockdep::hasDependency(kA, kC));
      b.unlock();
    } else {
      ADD_FAILURE() << "an uncontended trylock failed";
    }
  }
  // Without an a -> b edge, b then a closes no cycle.
  {
    MutexGuard gb(b);
    MutexGuard ga(a);
  }
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

TEST_F(LockdepTest, RecursiveReadOfOneClassIsReported) {
  RwSemaphore s(kSem);
  RwSemaphore other(kSem);
  const Loc sameInstance = Loc::current();
  readTwice(s, s, sameInstance);
  ASSERT_EQ(lockdep::reportCount(ReportKind::kRecursiveLocking), 1U);
  const lockdep::Report r = lockdep::reports().at(0);
  EXPECT_EQ(r.lockClass, "&test->sem");
  EXPECT_NE(r.text.find("WARNING: possible recursive locking detected\n"), std::string::npos);
  EXPECT_NE(r.text.find(fmt::format(" (&test->sem){{.+.+}}, at: {}\n", at(sameInstance))),
            std::string::npos);
  EXPECT_NE(r.text.find(" May be due to missing lock nesting notation"), std::string::npos);
  // Another instance of the class deadlocks the same way behind a writer.
  readTwice(s, other, Loc::current());
  EXPECT_EQ(lockdep::reportCount(ReportKind::kRecursiveLocking), 2U);
  EXPECT_TRUE(lockdep::heldLocks().empty());
  EXPECT_FALSE(s.isLocked());
}

TEST_F(LockdepTest, SubclassNestingIsNotRecursion) {
  RwSemaphore parent(kSem);
  RwSemaphore child(kSem);
  parent.downWrite();
  child.downWriteNested(1);
  const std::vector<lockdep::HeldLock> held = lockdep::heldLocks();
  child.upWrite();
  parent.upWrite();
  ASSERT_EQ(held.size(), 2U);
  EXPECT_EQ(held[1].subclass, 1U);
  EXPECT_EQ(lockdep::reportCount(), 0U);
  EXPECT_TRUE(lockdep::hasDependency(kSem, kSem));
  // The same without the annotation is reported.
  writeTwice(parent, child, Loc::current());
  EXPECT_EQ(lockdep::reportCount(ReportKind::kRecursiveLocking), 1U);
}

TEST_F(LockdepTest, ReleasingALockNotHeldIsABadUnlock) {
  int notALock = 0;
  lockdep::setThreadIdentity("qemu", 55, 0);
  const Loc where = Loc::current();
  lockdep::release(&notALock, kA, where);
  ASSERT_EQ(lockdep::reportCount(ReportKind::kBadUnlock), 1U);
  const std::string text = lockdep::reports().at(0).text;
  EXPECT_NE(text.find("WARNING: bad unlock balance detected!\n"), std::string::npos);
  EXPECT_NE(text.find(fmt::format("qemu/55 is trying to release lock (&test->a) at:\n{}\n"
                                  "but there are no more locks to release!\n",
                                  at(where))),
            std::string::npos);
  EXPECT_NE(text.find("no locks held by qemu/55.\n"), std::string::npos);
  // Without the class, the lock is named by its address.
  lockdep::release(&notALock, Loc::current());
  EXPECT_NE(lockdep::reports().at(1).text.find(fmt::format("({})", static_cast<void*>(&notALock))),
            std::string::npos);
}

TEST_F(LockdepTest, UnlockByAnotherThreadIsABadUnlock) {
  Mutex m(kA);
  testing::BoundThread(context(), [&] { lockOnly(m); }).join();
  testing::BoundThread(context(), [&] { unlockOnly(m, Loc::current()); }).join();
  EXPECT_EQ(lockdep::reportCount(ReportKind::kBadUnlock), 1U);
  EXPECT_FALSE(m.isLocked());
}

TEST_F(LockdepTest, WriteAssertionOnAReadHeldRwsemWarns) {
  RwSemaphore s(kSem);
  lockdep::setThreadIdentity("qemu", 77, 3);
  const Loc readAt = Loc::current();
  s.downRead(readAt);
  s.assertHeld();
  s.assertHeldRead();
  EXPECT_EQ(lockdep::reportCount(), 0U);
  const Loc assertAt = Loc::current();
  assertWrite(s, assertAt);
  s.upRead();
  ASSERT_EQ(lockdep::reportCount(ReportKind::kAssertHeldWrite), 1U);
  const lockdep::Report r = lockdep::reports().at(0);
  EXPECT_EQ(r.lockClass, "&test->sem");
  EXPECT_EQ(r.text.rfind("------------[ cut here ]------------\n", 0), 0U);
  EXPECT_NE(r.text.find(fmt::format("WARNING: CPU: 3 PID: 77 at {} ", at(assertAt))),
            std::string::npos);
  EXPECT_NE(r.text.find("lock not held for write: &test->sem (held for read)\n"),
            std::string::npos);
  EXPECT_NE(r.text.find(fmt::format("1 lock held by qemu/77:\n #0: (&test->sem){{.+.+}}, at: {}\n",
                                    at(readAt))),
            std::string::npos);
}

TEST_F(LockdepTest, AssertionsWarnOnlyWhenTheyFail) {
  RwSemaphore s(kSem);
  Mutex m(kA);
  lockdep::setThreadIdentity("vfio", 9, -1);
  assertHeldOf(s, Loc::current());
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeld), 1U);
  EXPECT_NE(lockdep::reports().at(0).text.find("WARNING: CPU: ? PID: 9 at "), std::string::npos);
  EXPECT_TRUE(lockdep::assertNoLocksHeld());
  {
    WriteGuard g(s);
    s.assertHeldWrite();
    s.assertNotHeld();  // fails: held for write
    EXPECT_FALSE(lockdep::assertHeldRead(&s, kSem, Loc::current()));
    EXPECT_FALSE(lockdep::assertNoLocksHeld());
    m.assertNotHeld();
  }
  s.assertNotHeld();
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertNotHeld), 1U);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeldRead), 1U);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertNoLocksHeld), 1U);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeldWrite), 0U);
  EXPECT_EQ(lockdep::reportCount(), 4U);
}

TEST_F(LockdepTest, EveryFailureIsCountedButPrintedOncePerSite) {
  RwSemaphore s(kSem);
  ReadGuard g(s);
  const Loc site = Loc::current();
  for (int i = 0; i < 3; ++i) assertWrite(s, site);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeldWrite), 3U);
  EXPECT_EQ(lockdep::reports().size(), 3U);
  EXPECT_EQ(printed().size(), 1U);
  assertWrite(s, Loc::current());
  EXPECT_EQ(printed().size(), 2U);
  lockdep::clearReports();
  EXPECT_EQ(lockdep::reportCount(), 0U);
  EXPECT_TRUE(lockdep::reports().empty());
  assertWrite(s, site);
  EXPECT_EQ(printed().size(), 3U);
}

TEST_F(LockdepTest, ReportsAreCountedByKind) {
  Mutex a(kA);
  Mutex b(kB);
  RwSemaphore s(kSem);
  {
    MutexGuard ga(a);
    MutexGuard gb(b);
  }
  {
    MutexGuard gb(b);
    MutexGuard ga(a);
  }
  readTwice(s, s, Loc::current());
  readTwice(s, s, Loc::current());
  lockdep::release(&a, kA, Loc::current());
  assertHeldOf(s, Loc::current());
  EXPECT_EQ(lockdep::reportCount(ReportKind::kCircularDependency), 1U);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kRecursiveLocking), 2U);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kBadUnlock), 1U);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeld), 1U);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertNotHeld), 0U);
  EXPECT_EQ(lockdep::reportCount(), 5U);
  std::vector<ReportKind> kinds;
  for (const lockdep::Report& r : lockdep::reports()) kinds.push_back(r.kind);
  EXPECT_EQ(kinds,
            (std::vector<ReportKind>{ReportKind::kCircularDependency, ReportKind::kRecursiveLocking,
                                     ReportKind::kRecursiveLocking, ReportKind::kBadUnlock,
                                     ReportKind::kAssertHeld}));
  EXPECT_EQ(lockdep::reportKindName(ReportKind::kBadUnlock), "bad-unlock");
}

TEST_F(LockdepTest, DisabledLockdepTracksAndReportsNothing) {
  lockdep::setEnabled(false);
  EXPECT_FALSE(lockdep::enabled());
  Mutex a(kA);
  Mutex b(kB);
  {
    MutexGuard ga(a);
    MutexGuard gb(b);
    EXPECT_TRUE(lockdep::heldLocks().empty());
    EXPECT_TRUE(lockdep::assertNotHeld(&a, kA, Loc::current()));
    EXPECT_TRUE(lockdep::assertNoLocksHeld());
  }
  {
    MutexGuard gb(b);
    MutexGuard ga(a);
  }
  EXPECT_TRUE(lockdep::assertHeld(&a, kA, Loc::current()));
  lockdep::release(&a, kA, Loc::current());
  EXPECT_FALSE(lockdep::hasDependency(kA, kB));
  EXPECT_FALSE(lockdep::hasDependency(kB, kA));
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

TEST_F(LockdepTest, HeldLocksAreListedOldestFirst) {
  Mutex a(kA);
  RwSemaphore s(kSem);
  MutexGuard ga(a);
  const Loc readAt = Loc::current();
  ReadGuard gs(s, readAt);
  const std::vector<lockdep::HeldLock> held = lockdep::heldLocks();
  ASSERT_EQ(held.size(), 2U);
  EXPECT_EQ(held[0].lock, &a);
  EXPECT_EQ(held[0].mode, lockdep::Mode::kExclusive);
  EXPECT_EQ(held[1].cls, &kSem);
  EXPECT_EQ(held[1].mode, lockdep::Mode::kShared);
  EXPECT_EQ(held[1].where.line(), readAt.line());
  EXPECT_TRUE(lockdep::isHeld(&s));
  EXPECT_TRUE(lockdep::isHeldMode(&s, lockdep::Mode::kShared));
  EXPECT_FALSE(lockdep::isHeldMode(&s, lockdep::Mode::kExclusive));
}

TEST_F(LockdepTest, DowngradeMakesTheHeldEntryShared) {
  RwSemaphore s(kSem);
  s.downWrite();
  EXPECT_TRUE(lockdep::isHeldMode(&s, lockdep::Mode::kExclusive));
  const Loc downgradeAt = Loc::current();
  s.downgradeWrite(downgradeAt);
  EXPECT_TRUE(lockdep::isHeldMode(&s, lockdep::Mode::kShared));
  EXPECT_EQ(lockdep::heldLocks().at(0).where.line(), downgradeAt.line());
  s.assertHeldRead();
  assertWrite(s, Loc::current());
  s.upRead();
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeldWrite), 1U);
  EXPECT_EQ(lockdep::reportCount(), 1U);
}

}  // namespace
}  // namespace vfiomm
