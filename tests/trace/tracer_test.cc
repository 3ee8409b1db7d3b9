// The tracer's buffer: the bound, the drop count, thread safety.
#include "trace/tracer.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "bound_context.h"

namespace vfiomm::trace {
namespace {

TraceEvent phaseAt(uint64_t ts) {
  TraceEvent e;
  e.kind = EventKind::kPhase;
  e.ts = ts;
  e.cpu = kNoCpu;
  return e;
}

// `vfiomm check`'s clock: a microsecond per reading, from 0 at every start,
// whatever the time it took.
TEST(Tracer, TheLogicalClockCountsReadings) {
  testing::BoundContext bound;
  Tracer& t = Tracer::current();
  t.start(10, "logical", 1, Tracer::Clock::kLogical);
  EXPECT_EQ(t.now(), 1000U);
  EXPECT_EQ(t.now(), 2000U);
  t.stop();
  t.start(10, "again", 1, Tracer::Clock::kLogical);
  EXPECT_EQ(t.now(), 1000U);
  t.stop();
}

TEST(Tracer, RingKeepsTheLatestEventsAndCountsTheDropped) {
  testing::BoundContext bound;
  Tracer& t = Tracer::current();
  t.start(3, "ring", 1);
  for (uint64_t ts = 1; ts <= 5; ++ts) t.record(phaseAt(ts));
  const TraceLog log = t.stop();
  ASSERT_EQ(log.events.size(), 3U);
  EXPECT_EQ(log.events[0].ts, 3U);
  EXPECT_EQ(log.events[1].ts, 4U);
  EXPECT_EQ(log.events[2].ts, 5U);
  EXPECT_EQ(log.recorded, 5U);
  EXPECT_EQ(log.dropped, 2U);
  EXPECT_EQ(log.limit, 3U);
  EXPECT_EQ(log.policy(), "ring buffer of 3 events keeping the latest; 5 recorded, 2 dropped");
}

TEST(Tracer, EventsComeOutByStartTimeThoughSpansAreRecordedWhenTheyEnd) {
  testing::BoundContext bound;
  Tracer& t = Tracer::current();
  t.start(10, "order", 1);
  t.record(phaseAt(7));
  t.record(phaseAt(2));  // a span that began earlier and ended later
  const TraceLog log = t.stop();
  ASSERT_EQ(log.events.size(), 2U);
  EXPECT_EQ(log.events[0].ts, 2U);
  EXPECT_EQ(log.events[1].ts, 7U);
}

TEST(Tracer, StopTurnsTheTracepointsOff) {
  testing::BoundContext bound;
  Tracer& t = Tracer::current();
  t.start(10, "switch", 1);
  EXPECT_TRUE(enabled());
  t.stop();
  EXPECT_FALSE(enabled());
  EXPECT_EQ(t.recorded(), 0U);
}

TEST(Tracer, ThreadsRecordConcurrentlyUnderTheBound) {
  testing::BoundContext bound;
  constexpr unsigned kThreads = 4;
  constexpr uint64_t kEach = 2000;
  Tracer& t = Tracer::current();
  t.start(100, "threads", kThreads);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < kThreads; ++i)
    threads.emplace_back([&t, i] {
      setCurrentTask(1, static_cast<int>(10 + i));
      for (uint64_t n = 0; n < kEach; ++n) t.record(phaseAt(t.now()));
    });
  for (std::thread& th : threads) th.join();
  const TraceLog log = t.stop();
  EXPECT_EQ(log.recorded, kThreads * kEach);
  EXPECT_EQ(log.events.size(), 100U);
  EXPECT_EQ(log.dropped, kThreads * kEach - 100);
  for (const TraceEvent& e : log.events) {
    EXPECT_EQ(e.pid, 1);
    EXPECT_GE(e.tid, 10);
    EXPECT_LT(e.tid, 10 + static_cast<int>(kThreads));
  }
}

TEST(Tracer, FlowScopeNamesTheZapAndRestoresTheOuterOne) {
  testing::BoundContext bound;
  EXPECT_EQ(currentFlow(), 0U);
  {
    const FlowScope outer(5);
    {
      const FlowScope inner(6);
      EXPECT_EQ(currentFlow(), 6U);
    }
    EXPECT_EQ(currentFlow(), 5U);
  }
  EXPECT_EQ(currentFlow(), 0U);
}

}  // namespace
}  // namespace vfiomm::trace
