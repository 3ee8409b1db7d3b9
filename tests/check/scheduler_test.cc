// The deterministic scheduler on plain threads and the model's locks: one
// thread runs at a time, the same seed gives the same choices, blocking is
// known (a thread is never picked while its lock word is unchanged), and
// two threads that take two locks in opposite order are reported as a
// deadlock with both wait points.
#include "check/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bound_context.h"
#include "check/dfs_strategy.h"
#include "check/pct_strategy.h"
#include "check/random_strategy.h"
#include "check/replay_strategy.h"
#include "sync/lock_class.h"
#include "sync/lockdep.h"
#include "sync/mutex.h"
#include "sync/sched_hook.h"

namespace vfiomm::check {
namespace {

const LockClass kLockA{"&check_test->a"};
const LockClass kLockB{"&check_test->b"};

struct Outcome {
  std::vector<unsigned> choices;
  uint64_t points = 0;
  std::string stuck;
};

// Runs each body on its own thread under a scheduler driven by `strategy`
// (whose schedule has begun); the calling thread is thread 0 and only
// starts and joins them.
Outcome runSchedule(KernelContext& context, Strategy& strategy,
                    const std::vector<std::function<void()>>& bodies) {
  Scheduler sched(strategy, 100000);
  Outcome out;
  sched.setStuckHandler([&out](const std::string& report) { out.stuck = report; });
  SchedHook* const previous = setSchedHook(&sched);
  sched.start();
  std::vector<testing::BoundThread> threads;
  for (const auto& body : bodies) {
    const unsigned id = sched.spawn();
    threads.emplace_back(context, [&sched, &body, id] {
      try {
        sched.attach(id);
        body();
      } catch (const Abandoned&) {
        return;  // the scheduler gave up on the run; nothing may run on
      }
      sched.detach();
    });
  }
  sched.finish();
  for (testing::BoundThread& t : threads) t.join();
  setSchedHook(previous);
  out.choices = sched.choices();
  out.points = sched.points();
  return out;
}

Outcome runThreads(KernelContext& context, Strategy& strategy, uint64_t seed,
                   const std::vector<std::function<void()>>& bodies) {
  strategy.beginSchedule(seed, 0);
  return runSchedule(context, strategy, bodies);
}

class SchedulerTest : public ::testing::Test {
 protected:
  testing::BoundContext boundContext;  // first: the objects below run on it
  void SetUp() override {
    lockdep::setReportSink([](const lockdep::Report&) {});
  }
  void TearDown() override { setSchedHook(nullptr); }
};

// Three threads append to one log under a mutex, with a point between the
// lock and the append: the log's order is the schedule's doing.
std::vector<int> contendedLog(KernelContext& context, Strategy& strategy, uint64_t seed,
                              Outcome* outcome) {
  Mutex mu(kLockA);
  std::vector<int> log;
  std::vector<std::function<void()>> bodies;
  for (int t = 0; t < 3; ++t)
    bodies.emplace_back([&mu, &log, t] {
      for (int i = 0; i < 4; ++i) {
        mu.lock();
        schedPoint("between lock and append");
        log.push_back(t);
        mu.unlock();
      }
    });
  *outcome = runThreads(context, strategy, seed, bodies);
  return log;
}

TEST_F(SchedulerTest, TheSameSeedMakesTheSameChoicesAndTheSameRun) {
  RandomStrategy strategy;
  Outcome first, second, other;
  const std::vector<int> a = contendedLog(boundContext.context(), strategy, 42, &first);
  const std::vector<int> b = contendedLog(boundContext.context(), strategy, 42, &second);
  const std::vector<int> c = contendedLog(boundContext.context(), strategy, 43, &other);
  EXPECT_EQ(a.size(), 12u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(first.choices, second.choices);
  EXPECT_EQ(first.points, second.points);
  EXPECT_FALSE(first.choices.empty());
  // Another seed explores another interleaving.
  EXPECT_NE(first.choices, other.choices);
  EXPECT_TRUE(first.stuck.empty()) << first.stuck;
}

TEST_F(SchedulerTest, AReplayOfTheChoicesRunsTheSameSchedule) {
  RandomStrategy random;
  Outcome recorded;
  const std::vector<int> log = contendedLog(boundContext.context(), random, 7, &recorded);
  ReplayStrategy replay(recorded.choices);
  Outcome replayed;
  EXPECT_EQ(contendedLog(boundContext.context(), replay, 0, &replayed), log);
  EXPECT_EQ(replayed.choices, recorded.choices);
  EXPECT_TRUE(replay.divergence().empty()) << replay.divergence();
}

// Random choices, counting how often thread 2 was picked while `watch`.
class WatchingStrategy : public RandomStrategy {
 public:
  unsigned pick(const std::vector<unsigned>& candidates, unsigned running) override {
    const unsigned next = RandomStrategy::pick(candidates, running);
    if (watch && next == 2) ++picked;
    return next;
  }
  bool watch = false;
  int picked = 0;
};

// Thread 1 holds a mutex across 200 points while thread 2 tries to take
// it. From the moment thread 2 tries, it may run once more (to fail its
// compare-exchange and go to sleep); were a blocked thread ever picked it
// would run at about every other point.
TEST_F(SchedulerTest, AThreadBlockedOnALockIsNeverPicked) {
  Mutex mu(kLockA);
  WatchingStrategy strategy;
  std::atomic<bool> held{false};
  auto holder = [&] {
    mu.lock();
    held = true;
    for (int i = 0; i < 200; ++i) schedPoint("holding");
    strategy.watch = false;
    mu.unlock();
  };
  auto contender = [&] {
    while (!held) spinPoint("until thread 1 holds it");
    strategy.watch = true;
    mu.lock();
    mu.unlock();
  };
  const Outcome o = runThreads(boundContext.context(), strategy, 11, {holder, contender});
  ASSERT_TRUE(o.stuck.empty()) << o.stuck;
  EXPECT_LE(strategy.picked, 1);
  EXPECT_GT(o.choices.size(), 0u);
}

// PCT always runs the highest priority: a thread spinning on a flag that a
// lower-priority thread sets would spin for ever, unless a spin point gives
// way to every thread that is not spinning (the CPU ticket lock spins so).
TEST_F(SchedulerTest, ASpinningThreadGivesWayToTheThreadItWaitsFor) {
  PctStrategy strategy(1);
  for (uint64_t seed = 0; seed < 10; ++seed) {
    bool flag = false;
    auto spinner = [&flag] {
      while (!flag) spinPoint("until the flag is set");
    };
    auto setter = [&flag] {
      for (int i = 0; i < 5; ++i) schedPoint("before setting");
      flag = true;
    };
    const Outcome o = runThreads(boundContext.context(), strategy, seed, {spinner, setter});
    ASSERT_TRUE(o.stuck.empty()) << "seed " << seed << ": " << o.stuck;
    EXPECT_TRUE(flag);
  }
}

// Two threads that loop on a mutex until a flag is set, as vCPUs fault on
// a BAR with decode off until the VMM acts: their lock points are no
// progress. Counted as progress (no wait loop), each waiter's points let
// the other look again, and under PCT (no priority change with depth 1)
// they run ahead of a setter they outrank: 77 points on 3 of these 10
// seeds. In a wait loop every point of theirs gives way to the setter, so
// each setter point lets a waiter run at most once.
TEST_F(SchedulerTest, ThreadsInAWaitLoopGiveWayToTheThreadTheyWaitFor) {
  PctStrategy strategy(1);
  for (uint64_t seed = 0; seed < 10; ++seed) {
    Mutex mu(kLockA);
    std::atomic<bool> flag{false};
    auto waiter = [&mu, &flag] {
      WaitLoopScope waiting;
      waiting.enter();
      while (!flag) {
        mu.lock();
        mu.unlock();
        spinPoint("until the flag is set");
      }
    };
    auto setter = [&flag] {
      for (int i = 0; i < 5; ++i) schedPoint("before setting");
      flag = true;
    };
    const Outcome o = runThreads(boundContext.context(), strategy, seed, {waiter, waiter, setter});
    ASSERT_TRUE(o.stuck.empty()) << "seed " << seed << ": " << o.stuck;
    EXPECT_TRUE(flag);
    EXPECT_LE(o.points, 60u) << "seed " << seed;
  }
}

// ABBA: some schedule lets each thread take its first lock before the
// other's second; the scheduler then has nobody to run and says who waits
// where, holding what.
TEST_F(SchedulerTest, TwoLocksTakenInOppositeOrderDeadlockAndAreReported) {
  RandomStrategy strategy;
  std::string report;
  for (uint64_t seed = 0; seed < 50 && report.empty(); ++seed) {
    Mutex a(kLockA);
    Mutex b(kLockB);
    auto inOrder = [](Mutex& first, Mutex& second) {
      return [&first, &second] {
        first.lock();
        second.lock();
        second.unlock();
        first.unlock();
      };
    };
    report =
        runThreads(boundContext.context(), strategy, seed, {inOrder(a, b), inOrder(b, a)}).stuck;
    lockdep::resetGraph();
  }
  ASSERT_FALSE(report.empty()) << "no schedule of 50 deadlocked";
  EXPECT_NE(report.find("deadlock: every live thread is blocked"), std::string::npos) << report;
  EXPECT_NE(report.find("thread 1: waits on lock"), std::string::npos) << report;
  EXPECT_NE(report.find("thread 2: waits on lock"), std::string::npos) << report;
  EXPECT_NE(report.find("holding &check_test->a"), std::string::npos) << report;
  EXPECT_NE(report.find("holding &check_test->b"), std::string::npos) << report;
}

// Two threads of two segments each (split by one point) interleave in
// C(4,2) = 6 ways: AABB and BBAA switch only where a thread ends (no
// preemption), ABBA and BAAB preempt once, ABAB and BABA twice. dfs must
// run exactly the schedules within its bound, each once, and then say so.
TEST_F(SchedulerTest, DfsRunsEveryScheduleWithinTheBoundExactlyOnce) {
  const std::vector<std::function<void()>> bodies(2, [] { schedPoint("between the segments"); });
  const size_t expected[] = {2, 4, 6};
  for (unsigned bound = 0; bound <= 2; ++bound) {
    DfsStrategy dfs(bound);
    std::set<std::vector<unsigned>> seen;
    size_t runs = 0;
    for (;;) {
      dfs.beginSchedule(0, 0);
      if (dfs.exhausted()) break;
      ASSERT_LT(runs, 100u) << "dfs does not end";
      const Outcome o = runSchedule(boundContext.context(), dfs, bodies);
      ASSERT_TRUE(o.stuck.empty()) << o.stuck;
      seen.insert(o.choices);
      ++runs;
    }
    EXPECT_EQ(runs, expected[bound]) << "bound " << bound;
    EXPECT_EQ(seen.size(), runs) << "bound " << bound << ": a schedule ran twice";
  }
}

}  // namespace
}  // namespace vfiomm::check
