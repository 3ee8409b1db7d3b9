// Every seeded bug's failing schedule, as `vfiomm check` writes it: shrunk to
// no more preemptions and no more choices than pct found it with, it replays
// strictly to the very same failure, and its trace (on the logical clock) is
// the same bytes every time it is replayed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>
#include <string>

#include "check/check_run.h"
#include "check/mutation.h"
#include "check/schedule_run.h"
#include "check/shrink.h"
#include "sim/scenario.h"
#include "source_dir.h"
#include "trace/chrome_trace_writer.h"

namespace vfiomm::check {
namespace {

struct Seeded {
  const char* mutation;
  const char* scenario;  // under scenarios/check
  DesignKind design;
};

CheckOptions pct(const Seeded& s) {
  CheckOptions o;
  o.design = s.design;
  EXPECT_TRUE(applyMutation(s.mutation, o.designOptions)) << s.mutation;
  o.strategy = StrategyKind::kPct;
  o.seed = 1;
  o.schedules = 200;
  o.onStuck = [](const Failure& f) {
    ADD_FAILURE() << "stuck: " << f.what;
    std::abort();  // the model's threads cannot be unwound
  };
  return o;
}

std::string chromeTrace(const ScheduleOutcome& o) {
  std::ostringstream out;
  trace::writeChromeTrace(out, {o.trace.get()});
  return out.str();
}

void expectShrunkReplayAndTrace(const Seeded& s) {
  const sim::Scenario sc = sim::loadScenario(test::sourceDir() + "/scenarios/check/" + s.scenario);
  const CheckOptions o = pct(s);
  const CheckResult found = runCheck(sc, o);
  ASSERT_TRUE(found.failure.has_value()) << s.mutation;

  const ShrinkResult shrunk = shrinkFailure(sc, o, *found.failure);
  const Failure& f = shrunk.failure;
  EXPECT_LE(f.preemptions, found.failure->preemptions) << s.mutation;
  EXPECT_LE(f.choices.size(), found.failure->choices.size()) << s.mutation;
  EXPECT_EQ(failureKind(f.what), failureKind(found.failure->what)) << s.mutation;

  const ScheduleOutcome first = replaySchedule(sc, o, f.choices, f.schedule, 100'000);
  const ScheduleOutcome second = replaySchedule(sc, o, f.choices, f.schedule, 100'000);
  EXPECT_TRUE(first.divergence.empty()) << s.mutation << ": " << first.divergence;
  ASSERT_TRUE(first.broken.has_value()) << s.mutation;
  EXPECT_EQ(*first.broken, f.what) << s.mutation;
  EXPECT_EQ(first.preemptions, f.preemptions) << s.mutation;
  ASSERT_NE(first.trace, nullptr);
  ASSERT_NE(second.trace, nullptr);
  EXPECT_GT(first.trace->events.size(), 10u) << s.mutation;
  EXPECT_EQ(chromeTrace(first), chromeTrace(second)) << s.mutation;
}

TEST(ShrinkReplayTest, FaultWithoutMemoryLock) {
  expectShrunkReplayAndTrace(
      {"fault-without-memory-lock", "fault-vs-disable.yaml", DesignKind::kAddressSpace});
}
TEST(ShrinkReplayTest, ZapBeforeMemoryLock) {
  expectShrunkReplayAndTrace(
      {"zap-before-memory-lock", "fault-vs-disable.yaml", DesignKind::kAddressSpace});
}
TEST(ShrinkReplayTest, ZapWithoutTlbShootdown) {
  expectShrunkReplayAndTrace(
      {"zap-without-tlb-shootdown", "fault-vs-disable.yaml", DesignKind::kAddressSpace});
}
TEST(ShrinkReplayTest, NoZapOnD3hot) {
  expectShrunkReplayAndTrace(
      {"no-zap-on-d3hot", "d3hot-vs-access.yaml", DesignKind::kAddressSpace});
}
TEST(ShrinkReplayTest, HotResetZapsRequesterOnly) {
  expectShrunkReplayAndTrace(
      {"hot-reset-zaps-requester-only", "hot-reset-second-device.yaml", DesignKind::kAddressSpace});
}
TEST(ShrinkReplayTest, InsertWithoutPtl) {
  expectShrunkReplayAndTrace(
      {"insert-without-ptl", "huge-vs-pte-insert.yaml", DesignKind::kHugeFault});
}
TEST(ShrinkReplayTest, ForkCopiesBeforeLink) {
  expectShrunkReplayAndTrace(
      {"fork-copies-before-link", "fork-vs-disable.yaml", DesignKind::kAddressSpace});
}
TEST(ShrinkReplayTest, FaultRetryReusesVma) {
  expectShrunkReplayAndTrace(
      {"fault-retry-reuses-vma", "retry-vs-munmap.yaml", DesignKind::kHugeFault});
}
TEST(ShrinkReplayTest, GatherWithoutNestedFlush) {
  expectShrunkReplayAndTrace(
      {"gather-without-nested-flush", "munmap-vs-disable.yaml", DesignKind::kAddressSpace});
}
TEST(ShrinkReplayTest, PrefaultUnderMemoryLock) {
  expectShrunkReplayAndTrace(
      {"prefault-under-memory-lock", "toggle-under-load.yaml", DesignKind::kPrefault});
}

// pct's first find of a fault without memory_lock has more than one
// preemption; the race needs only the fault to run between the disable's
// zap and its decode write, so shrinking gets it down.
TEST(ShrinkReplayTest, ShrinkingDropsPreemptionsAndChoices) {
  const sim::Scenario sc =
      sim::loadScenario(test::sourceDir() + "/scenarios/check/fault-vs-disable.yaml");
  const CheckOptions o = pct({"fault-without-memory-lock", "", DesignKind::kAddressSpace});
  const CheckResult found = runCheck(sc, o);
  ASSERT_TRUE(found.failure.has_value());
  const ShrinkResult shrunk = shrinkFailure(sc, o, *found.failure);
  EXPECT_EQ(shrunk.choicesBefore, found.failure->choices.size());
  EXPECT_EQ(shrunk.preemptionsBefore, found.failure->preemptions);
  EXPECT_LT(shrunk.failure.choices.size(), found.failure->choices.size());
  EXPECT_GT(shrunk.runs, 1u);
}

// The lockdep report of the naive refill needs no preemption at all.
TEST(ShrinkReplayTest, AFailureOfEveryScheduleShrinksToNoChoices) {
  const sim::Scenario sc =
      sim::loadScenario(test::sourceDir() + "/scenarios/check/toggle-under-load.yaml");
  const CheckOptions o = pct({"prefault-under-memory-lock", "", DesignKind::kPrefault});
  const CheckResult found = runCheck(sc, o);
  ASSERT_TRUE(found.failure.has_value());
  ASSERT_GT(found.failure->preemptions, 0u);
  const ShrinkResult shrunk = shrinkFailure(sc, o, *found.failure);
  EXPECT_EQ(shrunk.failure.preemptions, 0u);
  EXPECT_TRUE(shrunk.failure.choices.empty());
}

TEST(ShrinkReplayTest, TheKindOfAFailureIgnoresWhereItHappened) {
  EXPECT_EQ(failureKind("invariant 2: CPU 1 still translates 0x1000 after a zap"), "invariant 2");
  EXPECT_EQ(failureKind("invariant 1 broken in phase 'race': 1 access(es)"), "invariant 1");
  EXPECT_EQ(failureKind("=====\nWARNING: possible circular locking dependency detected\n-----\n"),
            "WARNING: possible circular locking dependency detected");
  EXPECT_EQ(failureKind("---[ cut here ]---\nWARNING: CPU: 1 PID: 1000 at mm/x.cc:12 f()\nmore"),
            "WARNING: at mm/x.cc:12 f()");
  EXPECT_NE(failureKind("invariant 2: x"), failureKind("invariant 4: x"));
}

}  // namespace
}  // namespace vfiomm::check
