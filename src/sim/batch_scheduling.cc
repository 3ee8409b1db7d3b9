#include "sim/batch_scheduling.h"

#include <pthread.h>
#include <sched.h>

namespace vfiomm::sim {

BatchScheduling::BatchScheduling() {
  sched_param param{};
  int policy = 0;
  if (pthread_getschedparam(pthread_self(), &policy, &param) != 0 || policy == SCHED_BATCH) return;
  const sched_param batch{};  // SCHED_BATCH takes priority 0
  if (pthread_setschedparam(pthread_self(), SCHED_BATCH, &batch) != 0) return;
  previousPolicy_ = policy;
  previousPriority_ = param.sched_priority;
}

BatchScheduling::~BatchScheduling() {
  if (previousPolicy_ < 0) return;
  sched_param param{};
  param.sched_priority = previousPriority_;
  (void)pthread_setschedparam(pthread_self(), previousPolicy_, &param);
}

}  // namespace vfiomm::sim
