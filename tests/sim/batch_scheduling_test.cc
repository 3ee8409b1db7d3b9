// sim/batch_scheduling.h: the calling thread runs under SCHED_BATCH inside
// the scope and under its old policy after it, nested scopes included.
#include "sim/batch_scheduling.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

namespace vfiomm::sim {
namespace {

int policyOfThisThread() {
  int policy = -1;
  sched_param param{};
  EXPECT_EQ(pthread_getschedparam(pthread_self(), &policy, &param), 0);
  return policy;
}

TEST(BatchScheduling, TheScopeRunsUnderSchedBatchAndRestoresThePolicy) {
  const int before = policyOfThisThread();
  ASSERT_NE(before, SCHED_BATCH) << "the test runner itself runs under SCHED_BATCH";
  {
    const BatchScheduling batch;
    EXPECT_EQ(policyOfThisThread(), SCHED_BATCH);
    {
      const BatchScheduling nested;  // already batch: nothing to restore
      EXPECT_EQ(policyOfThisThread(), SCHED_BATCH);
    }
    EXPECT_EQ(policyOfThisThread(), SCHED_BATCH);
  }
  EXPECT_EQ(policyOfThisThread(), before);
}

}  // namespace
}  // namespace vfiomm::sim
