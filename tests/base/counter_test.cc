#include "base/counter.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace vfiomm {
namespace {

VFIOMM_COUNTER(testEvents, "test.counter.events", "events counted by counter_test");

// Binds a set to the calling thread for a scope.
class Bound {
 public:
  explicit Bound(CounterSet& set) : previous_(CounterSet::bind(&set)) {}
  ~Bound() { CounterSet::bind(previous_); }
  Bound(const Bound&) = delete;
  Bound& operator=(const Bound&) = delete;

 private:
  CounterSet* const previous_;
};

TEST(Counter, SumsEveryThreadsShard) {
  CounterSet set;
  const Bound bound(set);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&set] {
      const Bound inThread(set);
      for (int i = 0; i < 10000; ++i) testEvents.add();
    });
  for (auto& th : threads) th.join();
  testEvents.add(5);
  EXPECT_EQ(set.read(testEvents), 40005U);
  EXPECT_EQ(set.snapshot().get("test.counter.events"), 40005U);
  EXPECT_EQ(set.snapshot().get(testEvents), 40005U);
  EXPECT_EQ(testEvents.description(), "events counted by counter_test");
  EXPECT_EQ(Counter::byName("test.counter.events"), &testEvents);
}

TEST(Counter, EachSetCountsApart) {
  CounterSet a;
  CounterSet b;
  {
    const Bound inA(a);
    testEvents.add(3);
    const CounterSnapshot before = b.snapshot();
    {
      const Bound inB(b);  // a second kernel entered from inside the first
      testEvents.add(7);
    }
    testEvents.add();
    EXPECT_EQ(b.snapshot().since(before).get(testEvents), 7U);
  }
  EXPECT_EQ(a.read(testEvents), 4U);
  EXPECT_EQ(b.read(testEvents), 7U);
}

TEST(CounterDeathTest, AnUnknownNameIsABugNotAZero) {
  CounterSet set;
  const CounterSnapshot s = set.snapshot();
  EXPECT_DEATH(static_cast<void>(s.get("no.such.counter")), "no counter is registered");
}

TEST(CounterDeathTest, CountingOnAnUnboundThreadIsABug) {
  EXPECT_DEATH(testEvents.add(), "bound to no kernel");
}

}  // namespace
}  // namespace vfiomm
