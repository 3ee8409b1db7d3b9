#include "sync/sched_hook.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "sync/mutex.h"
#include "sync/rw_semaphore.h"
#include "sync/spin_lock.h"
#include "sync_test_support.h"

namespace vfiomm {
namespace {

const LockClass kHookMutex{"&test->hook_mutex"};
const LockClass kHookSpin{"&test->hook_spin"};
const LockClass kHookSem{"&test->hook_sem"};

class SchedHookTest : public SyncTest {
 protected:
  RecordingHook hook_;
};

TEST_F(SchedHookTest, InstallingAndRestoringTheHook) {
  SchedHook& original = schedHook();
  EXPECT_EQ(setSchedHook(&hook_), &original);
  EXPECT_EQ(&schedHook(), &hook_);
  schedPoint("vfio_pci_mmap_huge_fault");
  EXPECT_EQ(hook_.points(), std::vector<std::string>{"vfio_pci_mmap_huge_fault"});
  EXPECT_EQ(setSchedHook(nullptr), &hook_);
  EXPECT_EQ(&schedHook(), &original);
}

TEST_F(SchedHookTest, UncontendedLocksCallBeforeAcquireAndAfterReleaseOnly) {
  setSchedHook(&hook_);
  Mutex m(kHookMutex);
  SpinLock l(kHookSpin);
  RwSemaphore s(kHookSem);
  { MutexGuard g(m); }
  { SpinGuard g(l); }
  { ReadGuard g(s); }
  { WriteGuard g(s); }
  EXPECT_EQ(hook_.befores.load(), 4);
  EXPECT_EQ(hook_.releases.load(), 4);
  // A trylock cannot block, so it is no acquisition point; its release is.
  EXPECT_TRUE(tryLockSucceeds(m));
  EXPECT_TRUE(readTrylockSucceeds(s));
  EXPECT_EQ(hook_.befores.load(), 4);
  EXPECT_EQ(hook_.releases.load(), 6);
  s.downWrite();
  s.downgradeWrite();
  s.upRead();
  EXPECT_EQ(hook_.befores.load(), 5);
  EXPECT_EQ(hook_.releases.load(), 8);
  EXPECT_EQ(hook_.waits.load(), 0);
  EXPECT_EQ(hook_.wakingReleases.load(), 0);
}

// A contender sleeps in the hook's wait(), and the release that lets it in
// tells the hook there is a waiter to wake.
template <typename Lock, typename Guard>
void contend(KernelContext& context, RecordingHook& hook, Lock& lock) {
  std::atomic<bool> got{false};
  lock.lock();
  testing::BoundThread contender(context, [&] {
    Guard g(lock);
    got.store(true);
    hook.poke();
  });
  EXPECT_TRUE(hook.awaitSleeper(contender.get_id(), got)) << "contender passed the holder";
  EXPECT_EQ(hook.wakingReleases.load(), 0);
  lock.unlock();
  contender.join();
  EXPECT_TRUE(got.load());
  EXPECT_GE(hook.wakingReleases.load(), 1);
  EXPECT_EQ(hook.befores.load(), 2);
}

TEST_F(SchedHookTest, ContendedMutexWaitsThroughTheHook) {
  setSchedHook(&hook_);
  Mutex m(kHookMutex);
  contend<Mutex, MutexGuard>(context(), hook_, m);
}

TEST_F(SchedHookTest, ContendedSpinLockWaitsThroughTheHook) {
  setSchedHook(&hook_);
  SpinLock l(kHookSpin);
  contend<SpinLock, SpinGuard>(context(), hook_, l);
}

TEST_F(SchedHookTest, ContendedRwsemWaitsThroughTheHook) {
  setSchedHook(&hook_);
  RwSemaphore s(kHookSem);
  s.downWrite();
  std::atomic<bool> readerIn{false};
  testing::BoundThread reader(context(), [&] {
    ReadGuard g(s);
    readerIn.store(true);
    hook_.poke();
  });
  EXPECT_TRUE(hook_.awaitSleeper(reader.get_id(), readerIn)) << "reader passed a writer";
  s.upWrite();
  reader.join();
  EXPECT_GE(hook_.wakingReleases.load(), 1);
  EXPECT_EQ(hook_.befores.load(), 2);
}

}  // namespace
}  // namespace vfiomm
