// The tracer's buffer: the bound, the drop count, thread safety, and the
// hand-over format between a child process and the parent.
#include <gtest/gtest.h>

#include <sstream>
#include <thread>
#include <vector>

#include "bound_context.h"
#include "trace/tracer.h"

namespace vfiomm::trace {
namespace {

TraceEvent phaseAt(uint64_t ts) {
  TraceEvent e;
  e.kind = EventKind::kPhase;
  e.ts = ts;
  e.cpu = kNoCpu;
  return e;
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

TEST(TraceLog, SurvivesTheHandOverFromAChildProcess) {
  testing::BoundContext bound;
  Tracer& t = Tracer::current();
  t.start(2, "huge-fault", 4);
  t.nameProcess(1000, "vmm");
  t.nameThread(1000, 1001, "vcpu 1");
  setCurrentTask(1000, 1001);
  TraceEvent lock;
  lock.kind = EventKind::kLockAcquire;
  lock.ts = 10;
  lock.dur = 5;
  lock.addr = 0xdead0;
  lock.name = "&vdev->memory_lock";
  lock.flags = eventflag::kWrite | eventflag::kContended;
  lock.cpu = 3;
  t.record(lock);
  TraceEvent phase = phaseAt(20);
  phase.detail = t.intern("touch all");
  t.record(phase);
  t.record(phaseAt(30));
  setCurrentTask(0, 0);
  const TraceLog log = t.stop();

  std::stringstream file;
  writeTraceLog(file, log);
  const TraceLog back = readTraceLog(file);
  EXPECT_EQ(back.title, "huge-fault");
  EXPECT_EQ(back.cpus, 4U);
  EXPECT_EQ(back.recorded, 3U);
  EXPECT_EQ(back.dropped, 1U);
  EXPECT_EQ(back.threadName(1000, 1001), "vcpu 1");
  EXPECT_EQ(back.threadName(1000, 1002), "vmm-1002");
  ASSERT_EQ(back.events.size(), 2U);
  EXPECT_EQ(back.events[0].kind, EventKind::kPhase);
  EXPECT_EQ(back.events[0].detail, "touch all");
  EXPECT_EQ(back.events[0].ts, 20U);
  EXPECT_EQ(back.events[0].pid, 1000);
  EXPECT_EQ(back.events[0].tid, 1001);
}

TEST(TraceLog, AHandOverFileThatIsCutShortIsAnError) {
  testing::BoundContext bound;
  std::stringstream file("{\"title\":\"x\"}\n");
  EXPECT_THROW(readTraceLog(file), std::runtime_error);
  Tracer& t = Tracer::current();
  t.start(4, "cut", 1);
  t.record(phaseAt(1));
  std::stringstream whole;
  writeTraceLog(whole, t.stop());
  std::string text = whole.str();
  text.resize(text.size() - 8);  // the event line loses its last fields
  std::stringstream cut(text);
  EXPECT_THROW(readTraceLog(cut), std::runtime_error);
}

}  // namespace
}  // namespace vfiomm::trace
