// runCheck on a scenario of scenarios/check: a seeded bug is found within a
// bounded number of schedules, the correct design passes them, a run is a
// function of its seed, and the failing schedule's choices replay to the
// same failure.
#include "check/check_run.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "check/mutation.h"
#include "sim/scenario.h"
#include "source_dir.h"

namespace vfiomm::check {
namespace {

sim::Scenario faultVsDisable() {
  return sim::loadScenario(test::sourceDir() + "/scenarios/check/fault-vs-disable.yaml");
}

CheckOptions mutated(StrategyKind strategy, uint64_t seed,
                     const char* mutation = "fault-without-memory-lock") {
  CheckOptions o;
  o.design = DesignKind::kAddressSpace;
  EXPECT_TRUE(applyMutation(mutation, o.designOptions));
  o.strategy = strategy;
  o.seed = seed;
  o.schedules = 2000;
  o.onStuck = [](const Failure& f) {
    ADD_FAILURE() << "stuck: " << f.what;
    std::abort();  // the model's threads cannot be unwound
  };
  return o;
}

TEST(CheckRunTest, PctFindsAFaultWithoutMemoryLock) {
  const CheckResult r = runCheck(faultVsDisable(), mutated(StrategyKind::kPct, 1));
  ASSERT_TRUE(r.failure.has_value()) << "not found in " << r.schedules << " schedules";
  EXPECT_NE(r.failure->what.find("invariant 1"), std::string::npos) << r.failure->what;
  EXPECT_EQ(r.failure->schedule + 1, r.schedules);
}

TEST(CheckRunTest, RandomFindsAFaultWithoutMemoryLock) {
  const CheckResult r = runCheck(faultVsDisable(), mutated(StrategyKind::kRandom, 1));
  ASSERT_TRUE(r.failure.has_value()) << "not found in " << r.schedules << " schedules";
}

TEST(CheckRunTest, PctFindsAZapBeforeMemoryLock) {
  const CheckResult r =
      runCheck(faultVsDisable(), mutated(StrategyKind::kPct, 1, "zap-before-memory-lock"));
  ASSERT_TRUE(r.failure.has_value()) << "not found in " << r.schedules << " schedules";
  EXPECT_NE(r.failure->what.find("invariant 1"), std::string::npos) << r.failure->what;
}

TEST(CheckRunTest, DfsWithOnePreemptionFindsAFaultWithoutMemoryLock) {
  CheckOptions o = mutated(StrategyKind::kDfs, 0);
  o.preemptions = 1;
  const CheckResult r = runCheck(faultVsDisable(), o);
  ASSERT_TRUE(r.failure.has_value()) << "not found in " << r.schedules << " schedules";
  EXPECT_FALSE(r.exhausted);
}

TEST(CheckRunTest, DfsExhaustsTheCorrectDesignWithinItsBound) {
  CheckOptions o = mutated(StrategyKind::kDfs, 0);
  o.designOptions = DesignOptions{};
  o.preemptions = 1;
  const CheckResult r = runCheck(faultVsDisable(), o);
  EXPECT_FALSE(r.failure.has_value()) << r.failure->what;
  EXPECT_TRUE(r.exhausted);
  EXPECT_LT(r.schedules, o.schedules);
  EXPECT_EQ(r.distinct, r.schedules);  // each schedule once
}

// Lockdep sees the memory_lock -> mmap_lock order of the naive refill
// whatever the interleaving: the first schedule reports it.
TEST(CheckRunTest, TheRefillUnderMemoryLockIsALockdepReport) {
  const sim::Scenario sc =
      sim::loadScenario(test::sourceDir() + "/scenarios/check/toggle-under-load.yaml");
  CheckOptions o = mutated(StrategyKind::kPct, 1, "prefault-under-memory-lock");
  o.design = DesignKind::kPrefault;
  const CheckResult r = runCheck(sc, o);
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_NE(r.failure->what.find("circular locking dependency"), std::string::npos)
      << r.failure->what;
}

TEST(CheckRunTest, UnknownMutationsAreRefused) {
  DesignOptions o;
  EXPECT_FALSE(applyMutation("no-such-bug", o));
  EXPECT_FALSE(o.faultWithoutMemoryLock || o.zapBeforeMemoryLock);
}

TEST(CheckRunTest, TheCorrectDesignPassesTheSameSchedules) {
  CheckOptions o = mutated(StrategyKind::kPct, 1);
  o.designOptions = DesignOptions{};
  o.schedules = 200;
  const CheckResult r = runCheck(faultVsDisable(), o);
  EXPECT_FALSE(r.failure.has_value()) << r.failure->what;
  EXPECT_EQ(r.schedules, 200u);
  EXPECT_GT(r.distinct, 1u);
}

TEST(CheckRunTest, TheSameSeedFindsTheSameFailureTwice) {
  const CheckResult a = runCheck(faultVsDisable(), mutated(StrategyKind::kRandom, 5));
  const CheckResult b = runCheck(faultVsDisable(), mutated(StrategyKind::kRandom, 5));
  ASSERT_TRUE(a.failure.has_value());
  ASSERT_TRUE(b.failure.has_value());
  EXPECT_EQ(a.failure->schedule, b.failure->schedule);
  EXPECT_EQ(a.failure->choices, b.failure->choices);
  EXPECT_EQ(a.failure->what, b.failure->what);
  EXPECT_EQ(a.points, b.points);
  EXPECT_EQ(a.distinct, b.distinct);
}

TEST(CheckRunTest, TheFailingChoicesReplayToTheSameFailure) {
  const CheckResult found = runCheck(faultVsDisable(), mutated(StrategyKind::kPct, 3));
  ASSERT_TRUE(found.failure.has_value());
  CheckOptions o = mutated(StrategyKind::kReplay, 0);
  o.replay = found.failure->choices;
  const CheckResult replayed = runCheck(faultVsDisable(), o);
  EXPECT_TRUE(replayed.divergence.empty()) << replayed.divergence;
  EXPECT_EQ(replayed.schedules, 1u);
  ASSERT_TRUE(replayed.failure.has_value());
  EXPECT_EQ(replayed.failure->what, found.failure->what);
  EXPECT_EQ(replayed.failure->choices, found.failure->choices);
}

// Jobs run schedules side by side, but the run reports the lowest failing
// schedule and the totals up to it whatever their number.
TEST(CheckRunTest, OneJobAndTwoReportTheSame) {
  for (StrategyKind strategy : {StrategyKind::kPct, StrategyKind::kRandom}) {
    CheckOptions one = mutated(strategy, 4, "zap-before-memory-lock");
    one.schedules = 400;
    CheckOptions two = one;
    two.jobs = 2;
    const CheckResult a = runCheck(faultVsDisable(), one);
    const CheckResult b = runCheck(faultVsDisable(), two);
    ASSERT_TRUE(a.failure.has_value()) << strategyName(strategy);
    ASSERT_TRUE(b.failure.has_value()) << strategyName(strategy);
    EXPECT_GT(a.failure->schedule, 0u) << strategyName(strategy);  // the jobs had work to share
    EXPECT_EQ(a.failure->schedule, b.failure->schedule) << strategyName(strategy);
    EXPECT_EQ(a.failure->what, b.failure->what);
    EXPECT_EQ(a.failure->choices, b.failure->choices);
    EXPECT_EQ(a.schedules, b.schedules);
    EXPECT_EQ(a.points, b.points);
    EXPECT_EQ(a.choices, b.choices);
    EXPECT_EQ(a.distinct, b.distinct);
  }
}

TEST(CheckRunTest, OneJobAndTwoPassTheSameSchedules) {
  CheckOptions one = mutated(StrategyKind::kPct, 2);
  one.designOptions = DesignOptions{};
  one.schedules = 300;
  CheckOptions two = one;
  two.jobs = 2;
  const CheckResult a = runCheck(faultVsDisable(), one);
  const CheckResult b = runCheck(faultVsDisable(), two);
  EXPECT_FALSE(b.failure.has_value());
  EXPECT_EQ(b.schedules, 300u);
  EXPECT_EQ(a.points, b.points);
  EXPECT_EQ(a.choices, b.choices);
  EXPECT_EQ(a.distinct, b.distinct);
}

// The vCPUs loop on TLB hits until the events are done while the events
// wait for their accesses: both sides spin, and every schedule must still
// end (onStuck aborts on a livelock). Past their pass the vCPUs are in a
// wait loop, so their faults on the decode-off BAR are no progress and the
// VMM is not kept out until a priority change: a schedule is about 1,050
// points (about 8,900 on average over these 30 when the faults counted).
TEST(CheckRunTest, SchedulesWhereBothSidesSpinEnd) {
  const sim::Scenario sc =
      sim::loadScenario(test::sourceDir() + "/scenarios/check/toggle-under-load.yaml");
  CheckOptions o = mutated(StrategyKind::kPct, 1);
  o.designOptions = DesignOptions{};
  o.schedules = 30;
  const CheckResult r = runCheck(sc, o);
  EXPECT_FALSE(r.failure.has_value()) << r.failure->what;
  EXPECT_EQ(r.schedules, 30u);
  EXPECT_LT(r.points, 30u * 2000u);
  EXPECT_TRUE(applyMutation("zap-before-memory-lock", o.designOptions));
  o.schedules = 2000;
  EXPECT_TRUE(runCheck(sc, o).failure.has_value());
}

TEST(CheckRunTest, TheVmaListDesignBreaksItsMmapLockRuleUnmutated) {
  CheckOptions o = mutated(StrategyKind::kPct, 1);
  o.design = DesignKind::kVmaList;
  o.designOptions = DesignOptions{};
  const CheckResult r = runCheck(faultVsDisable(), o);
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_NE(r.failure->what.find("mmap_lock"), std::string::npos) << r.failure->what;
}

}  // namespace
}  // namespace vfiomm::check
