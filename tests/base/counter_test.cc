#include "base/counter.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace vfiomm {
namespace {

VFIOMM_COUNTER(testEvents, "test.counter.events", "events counted by counter_test");

TEST(Counter, SumsEveryThreadsShard) {
  const CounterSnapshot before = CounterRegistry::global().snapshot();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([] {
      for (int i = 0; i < 10000; ++i) testEvents.add();
    });
  for (auto& th : threads) th.join();
  testEvents.add(5);
  const CounterSnapshot delta = CounterRegistry::global().snapshot().since(before);
  EXPECT_EQ(delta.get("test.counter.events"), 40005U);
  EXPECT_EQ(delta.get("no.such.counter"), 0U);
  EXPECT_EQ(CounterRegistry::global().description("test.counter.events"),
            "events counted by counter_test");
}

}  // namespace
}  // namespace vfiomm
