#include "sync/rw_semaphore.h"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <latch>
#include <thread>
#include <vector>

#include "base/source_location.h"
#include "sync/lockdep.h"
#include "sync/thread_annotations.h"
#include "sync_test_support.h"

namespace vfiomm {
namespace {

using Loc = SourceLocation;
using lockdep::ReportKind;

const LockClass kSem{"&test->rwsem"};

class RwSemaphoreTest : public SyncTest {
 protected:
  RecordingHook hook_;
};

// Each assertion in a function of its own: what is tested is the run-time
// check, which the static analysis would otherwise see as an acquisition.
void assertWrite(const RwSemaphore& s) { s.assertHeldWrite(); }
void assertRead(const RwSemaphore& s) { s.assertHeldRead(); }
void assertAny(const RwSemaphore& s) { s.assertHeld(); }

TEST_F(RwSemaphoreTest, ReadersShareTheLock) {
  RwSemaphore s(kSem);
  constexpr int kReaders = 3;
  std::latch inside(kReaders);
  std::latch leave(1);
  std::vector<testing::BoundThread> readers;
  readers.reserve(kReaders);
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back(context(), [&] {
      ReadGuard g(s);
      inside.count_down();
      leave.wait();
    });
  }
  inside.wait();  // every reader holds the lock at once
  EXPECT_TRUE(s.isLocked());
  EXPECT_FALSE(s.isWriteLocked());
  EXPECT_FALSE(writeTrylockSucceeds(s));
  EXPECT_TRUE(readTrylockSucceeds(s));
  leave.count_down();
  for (auto& t : readers) t.join();
  EXPECT_FALSE(s.isLocked());
}

TEST_F(RwSemaphoreTest, WritersExcludeReadersAndWriters) {
  RwSemaphore s(kSem);
  constexpr int kWriters = 2;
  constexpr int kReaders = 2;
  constexpr int kIterations = 2000;
  std::atomic<int> writersIn{0};
  std::atomic<int> readersIn{0};
  std::atomic<int> violations{0};
  long written = 0;  // guarded by s; a data race here is what TSan would flag
  std::atomic<long> readSum{0};
  std::barrier start(kWriters + kReaders);
  std::vector<testing::BoundThread> threads;
  threads.reserve(kWriters + kReaders);
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back(context(), [&] {
      start.arrive_and_wait();
      for (int n = 0; n < kIterations; ++n) {
        WriteGuard g(s);
        if (writersIn.fetch_add(1) != 0 || readersIn.load() != 0) violations.fetch_add(1);
        ++written;
        writersIn.fetch_sub(1);
      }
    });
  }
  for (int i = 0; i < kReaders; ++i) {
    threads.emplace_back(context(), [&] {
      start.arrive_and_wait();
      for (int n = 0; n < kIterations; ++n) {
        ReadGuard g(s);
        readersIn.fetch_add(1);
        if (writersIn.load() != 0) violations.fetch_add(1);
        readSum.fetch_add(written);
        readersIn.fetch_sub(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(written, long{kWriters} * kIterations);
  EXPECT_FALSE(s.isLocked());
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

TEST_F(RwSemaphoreTest, AWaitingWriterHoldsBackNewReaders) {
  setSchedHook(&hook_);
  RwSemaphore s(kSem);
  std::atomic<int> order{0};
  int writerTurn = -1;
  int readerTurn = -1;
  std::atomic<bool> writerIn{false};
  std::atomic<bool> readerIn{false};
  s.downRead();
  testing::BoundThread writer(context(), [&] {
    WriteGuard g(s);
    writerTurn = order.fetch_add(1);
    writerIn.store(true);
    hook_.poke();
  });
  EXPECT_TRUE(hook_.awaitSleeper(writer.get_id(), writerIn)) << "writer passed a reader";
  testing::BoundThread reader(context(), [&] {
    ReadGuard g(s);
    readerTurn = order.fetch_add(1);
    readerIn.store(true);
    hook_.poke();
  });
  // The reader would share with us, but the sleeping writer comes first.
  EXPECT_TRUE(hook_.awaitSleeper(reader.get_id(), readerIn)) << "reader passed a waiting writer";
  s.upRead();
  writer.join();
  reader.join();
  EXPECT_EQ(writerTurn, 0);
  EXPECT_EQ(readerTurn, 1);
  EXPECT_GE(hook_.wakingReleases.load(), 1);  // our upRead woke the writer
}

TEST_F(RwSemaphoreTest, TrylocksFailWhileAnyoneWaits) {
  setSchedHook(&hook_);
  RwSemaphore s(kSem);
  std::atomic<bool> writerIn{false};
  s.downRead();
  testing::BoundThread writer(context(), [&] {
    WriteGuard g(s);
    writerIn.store(true);
    hook_.poke();
  });
  EXPECT_TRUE(hook_.awaitSleeper(writer.get_id(), writerIn)) << "writer passed a reader";
  EXPECT_FALSE(readTrylockSucceeds(s));
  EXPECT_FALSE(writeTrylockSucceeds(s));
  s.upRead();
  writer.join();
  EXPECT_TRUE(writeTrylockSucceeds(s));
}

TEST_F(RwSemaphoreTest, DowngradeLetsWaitingReadersIn) {
  setSchedHook(&hook_);
  RwSemaphore s(kSem);
  std::atomic<bool> readerIn{false};
  std::latch leave(1);
  s.downWrite();
  testing::BoundThread reader(context(), [&] {
    ReadGuard g(s);
    readerIn.store(true);
    readerIn.notify_all();
    hook_.poke();
    leave.wait();
  });
  EXPECT_TRUE(hook_.awaitSleeper(reader.get_id(), readerIn)) << "reader passed a writer";
  s.downgradeWrite();
  readerIn.wait(false);  // the reader got in while we still hold it for read
  EXPECT_TRUE(s.isLocked());
  EXPECT_FALSE(s.isWriteLocked());
  s.upRead();
  leave.count_down();
  reader.join();
  EXPECT_FALSE(s.isLocked());
}

// Releases a write lock and takes it back at once, before any sleeper could
// run: whether the lock could be stolen so.
bool releaseAndSteal(RwSemaphore& s) NO_THREAD_SAFETY_ANALYSIS {
  s.upWrite();
  return s.downWriteTrylock();
}

// The test's write lock passes in and out of releaseAndSteal(), which the
// analysis cannot follow.
void takeWrite(RwSemaphore& s) NO_THREAD_SAFETY_ANALYSIS { s.downWrite(); }
void releaseWrite(RwSemaphore& s) NO_THREAD_SAFETY_ANALYSIS { s.upWrite(); }

// RWSEM_FLAG_HANDOFF: a reader woken again and again only to find that a
// writer took the lock back first reserves it; after that the writer cannot
// steal it, and the reader is the next to hold it.
TEST_F(RwSemaphoreTest, AReaderPassedAgainAndAgainReservesTheLock) {
  GatedWaitHook hook;
  setSchedHook(&hook);
  RwSemaphore s(kSem);
  std::atomic<bool> readerIn{false};
  takeWrite(s);
  testing::BoundThread reader(context(), [&] {
    ReadGuard g(s);
    readerIn.store(true);
  });
  constexpr int kLosses = 4;  // the model's stand-in for RWSEM_WAIT_TIMEOUT
  int sleeps = 0;
  for (; sleeps < kLosses; ++sleeps) {
    hook.awaitWaits(sleeps + 1);
    EXPECT_TRUE(releaseAndSteal(s)) << "stolen before any handoff, round " << sleeps;
    hook.open(sleeps + 1);  // wakes to find the lock taken: one loss more
  }
  hook.awaitWaits(sleeps + 1);  // asleep again, now holding the handoff
  const bool stolen = releaseAndSteal(s);
  EXPECT_FALSE(stolen) << "a writer passed the reserved reader";
  EXPECT_FALSE(readTrylockSucceeds(s)) << "a new reader passed the reserved one";
  if (stolen) releaseWrite(s);
  hook.open(1 << 30);
  reader.join();
  EXPECT_TRUE(readerIn.load());
  EXPECT_TRUE(writeTrylockSucceeds(s)) << "the handoff outlived its reader";
  EXPECT_FALSE(s.isLocked());
}

TEST_F(RwSemaphoreTest, WithoutLockdepAssertionsCheckTheLockWord) {
  lockdep::setEnabled(false);
  RwSemaphore s(kSem);
  assertAny(s);
  assertWrite(s);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeld), 1U);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeldWrite), 1U);
  {
    ReadGuard g(s);
    assertAny(s);
    assertRead(s);
    assertWrite(s);  // nobody holds it for write
  }
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeld), 1U);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeldRead), 0U);
  ASSERT_EQ(lockdep::reportCount(ReportKind::kAssertHeldWrite), 2U);
  const std::string text = lockdep::reports().at(2).text;
  EXPECT_NE(text.find("lock not held for write: &test->rwsem (read-locked)\n"), std::string::npos);
  EXPECT_EQ(text.find("held by"), std::string::npos) << "lockdep off tracks no held locks";

  // Without lockdep "write-held" means by anyone, this thread or not.
  std::latch held(1);
  std::latch leave(1);
  testing::BoundThread writer(context(), [&] {
    WriteGuard g(s);
    held.count_down();
    leave.wait();
  });
  held.wait();
  assertWrite(s);
  assertRead(s);
  EXPECT_EQ(lockdep::reportCount(), 3U);
  // With lockdep the check is per thread: this one holds nothing.
  lockdep::setEnabled(true);
  assertWrite(s);
  EXPECT_EQ(lockdep::reportCount(ReportKind::kAssertHeldWrite), 3U);
  lockdep::setEnabled(false);
  leave.count_down();
  writer.join();
}

}  // namespace
}  // namespace vfiomm
