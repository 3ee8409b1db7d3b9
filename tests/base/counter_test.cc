#include "base/counter.h"

#include <gtest/gtest.h>

#include <barrier>
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

// Each live thread owns its shard and adds to it without a locked
// instruction; threads past the claimable shards share the last one,
// atomically. Every thread claims before any adds and stays alive until all
// have added, so the claims overlap; the sum must still be exact.
TEST(Counter, LiveThreadsOwnTheirShardsAndTheRestShareOneAtomically) {
  CounterSet set;
  constexpr unsigned kThreads = 2 * CounterSet::kShards;
  constexpr uint64_t kAdds = 20000;
  std::barrier<> claimed(kThreads);
  std::barrier<> counted(kThreads);
  std::vector<unsigned> shards(kThreads);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      const Bound inThread(set);
      shards[t] = CounterSet::threadShard();
      claimed.arrive_and_wait();
      for (uint64_t i = 0; i < kAdds; ++i) testEvents.add();
      counted.arrive_and_wait();
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(set.read(testEvents), kThreads * kAdds);
  std::vector<unsigned> owners(CounterSet::kShards, 0);
  for (unsigned s : shards) ++owners[s];
  for (unsigned s = 0; s < CounterSet::kSharedShard; ++s)
    EXPECT_LE(owners[s], 1U) << "shard " << s << " has two live owners";
  // This thread may hold one too; every other claimable shard went to one.
  EXPECT_GE(owners[CounterSet::kSharedShard], kThreads - CounterSet::kSharedShard);
}

// A thread that exits gives its shard back: the next threads claim again
// rather than fall back to the shared shard.
TEST(Counter, AnExitedThreadsShardIsClaimedAgain) {
  for (int round = 0; round < 3 * static_cast<int>(CounterSet::kShards); ++round) {
    unsigned shard = CounterSet::kSharedShard;
    std::thread([&shard] { shard = CounterSet::threadShard(); }).join();
    EXPECT_NE(shard, CounterSet::kSharedShard) << "round " << round;
  }
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
