// runConcurrently: every piece of work runs once, at most `jobs` at a time,
// and a failure comes back to the caller as it was thrown.
#include "sim/work_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "sim/scenario.h"

namespace vfiomm::sim {
namespace {

TEST(WorkPool, EveryPieceRunsOnceAndNoMoreThanJobsAtOnce) {
  constexpr size_t kPieces = 12;
  std::vector<std::atomic<int>> runs(kPieces);
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::vector<size_t> startedOrder;
  const std::thread::id caller = std::this_thread::get_id();
  runConcurrently(
      kPieces, 3,
      [&](size_t i) {
        EXPECT_NE(std::this_thread::get_id(), caller);
        const int now = inside.fetch_add(1) + 1;
        for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {
        }
        ++runs[i];
        inside.fetch_sub(1);
      },
      [&](size_t i) {
        EXPECT_EQ(std::this_thread::get_id(), caller);
        startedOrder.push_back(i);
      });
  for (const std::atomic<int>& r : runs) EXPECT_EQ(r.load(), 1);
  EXPECT_LE(most.load(), 3);
  std::vector<size_t> inOrder(kPieces);
  for (size_t i = 0; i < kPieces; ++i) inOrder[i] = i;
  EXPECT_EQ(startedOrder, inOrder);
}

TEST(WorkPool, AFailureStopsTheRestAndComesBackAsThrown) {
  std::vector<std::atomic<int>> runs(5);
  EXPECT_THROW(runConcurrently(5, 1,
                               [&](size_t i) {
                                 ++runs[i];
                                 if (i == 1) throw ScenarioError("piece 1 is bad input");
                               }),
               ScenarioError);
  EXPECT_EQ(runs[0].load(), 1);
  EXPECT_EQ(runs[1].load(), 1);
  for (size_t i = 2; i < runs.size(); ++i) EXPECT_EQ(runs[i].load(), 0) << i;
}

TEST(WorkPool, TheLowestFailingIndexWins) {
  try {
    // Both run at once; whichever fails first, piece 0's error comes back.
    runConcurrently(2, 2, [](size_t i) {
      if (i == 0) throw std::runtime_error("zero");
      throw std::logic_error("one");
    });
    FAIL() << "nothing was thrown";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "zero");
  }
}

TEST(WorkPool, NothingToDoReturnsAtOnce) {
  bool ran = false;
  runConcurrently(0, 4, [&](size_t) { ran = true; });
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace vfiomm::sim
