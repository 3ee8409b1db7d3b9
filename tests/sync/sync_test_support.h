// What the sync tests share: a fixture that starts every test from a clean
// lockdep and keeps its output, and a scheduling hook that records calls.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bound_context.h"
#include "sync/lockdep.h"
#include "sync/sched_hook.h"

namespace vfiomm {

// lockdep on, no dependencies, no reports; what would be printed is kept in
// printed() instead, so a test can check what reached the console.
class SyncTest : public ::testing::Test {
 protected:
  KernelContext& context() { return bound_.context(); }

  void SetUp() override {
    lockdep::setEnabled(true);
    lockdep::resetGraph();
    lockdep::clearReports();
    lockdep::setReportSink([this](const lockdep::Report& r) {
      std::lock_guard guard(printedMu_);
      printed_.push_back(r);
    });
    ASSERT_TRUE(lockdep::heldLocks().empty()) << "a previous test left a lock held";
  }

  void TearDown() override { setSchedHook(nullptr); }

  std::vector<lockdep::Report> printed() {
    std::lock_guard guard(printedMu_);
    return printed_;
  }

 private:
  testing::BoundContext bound_;  // a fresh lockdep graph for each test
  std::mutex printedMu_;
  std::vector<lockdep::Report> printed_;
};

// Every sleep on a lock word is held until the test opens it, and then
// returns whatever the word says: the sleeper re-reads the word only once the
// test has changed it as it wanted. The test itself must never sleep.
class GatedWaitHook : public SchedHook {
 public:
  void wait(const void* /*lock*/, const std::atomic<uint32_t>& /*word*/,
            uint32_t /*observed*/) override {
    std::unique_lock l(mu_);
    const int mine = ++waits_;
    changed_.notify_all();
    changed_.wait(l, [&] { return opened_ >= mine; });
  }
  void awaitWaits(int n) {
    std::unique_lock l(mu_);
    changed_.wait(l, [&] { return waits_ >= n; });
  }
  void open(int upTo) {
    std::lock_guard l(mu_);
    opened_ = upTo;
    changed_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int waits_ = 0;
  int opened_ = 0;
};

// Counts every call, remembers which threads slept in wait(), and otherwise
// behaves as the default hook. A test lines threads up with awaitSleeper():
// a thread that entered wait() is blocked on the lock until the word changes.
class RecordingHook : public SchedHook {
 public:
  void beforeAcquire(const void* lock) override {
    befores.fetch_add(1);
    SchedHook::beforeAcquire(lock);
  }

  void wait(const void* lock, const std::atomic<uint32_t>& word, uint32_t observed) override {
    {
      std::lock_guard guard(mu_);
      sleepers_.insert(std::this_thread::get_id());
    }
    waits.fetch_add(1);
    poke();
    SchedHook::wait(lock, word, observed);
  }

  void afterRelease(const void* lock, std::atomic<uint32_t>& word, bool waiters) override {
    releases.fetch_add(1);
    if (waiters) wakingReleases.fetch_add(1);
    SchedHook::afterRelease(lock, word, waiters);
  }

  void schedPoint(std::string_view what) override {
    std::lock_guard guard(mu_);
    points_.emplace_back(what);
  }

  // Returns true once `id` has entered wait(), or false once `gotIn` is set:
  // the thread took the lock without waiting, which the caller reports
  // rather than hang. A thread sets its `gotIn` and then calls poke().
  bool awaitSleeper(std::thread::id id, const std::atomic<bool>& gotIn) {
    for (;;) {
      const int seen = events_.load();
      if (slept(id)) return true;
      if (gotIn.load()) return false;
      events_.wait(seen);
    }
  }

  void poke() {
    events_.fetch_add(1);
    events_.notify_all();
  }

  bool slept(std::thread::id id) {
    std::lock_guard guard(mu_);
    return sleepers_.count(id) != 0;
  }

  std::vector<std::string> points() {
    std::lock_guard guard(mu_);
    return points_;
  }

  std::atomic<int> befores{0};
  std::atomic<int> waits{0};
  std::atomic<int> releases{0};
  std::atomic<int> wakingReleases{0};

 private:
  std::atomic<int> events_{0};
  std::mutex mu_;
  std::set<std::thread::id> sleepers_;
  std::vector<std::string> points_;
};

// Whether a trylock succeeds; a lock it takes is given back at once.
template <typename Lock>
bool tryLockSucceeds(Lock& lock) {
  if (!lock.tryLock()) return false;
  lock.unlock();
  return true;
}
template <typename Rwsem>
bool readTrylockSucceeds(Rwsem& sem) {
  if (!sem.downReadTrylock()) return false;
  sem.upRead();
  return true;
}
template <typename Rwsem>
bool writeTrylockSucceeds(Rwsem& sem) {
  if (!sem.downWriteTrylock()) return false;
  sem.upWrite();
  return true;
}

}  // namespace vfiomm
