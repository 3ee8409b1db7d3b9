#include "sim/timeline.h"

#include <algorithm>
#include <utility>

namespace vfiomm::sim {

// Room for at least the start and the end sample.
PhaseTimeline::PhaseTimeline(size_t maxSamples) : maxSamples_(std::max<size_t>(maxSamples, 2)) {}

void PhaseTimeline::offer(const TimelineSample& s) {
  if (offered_++ % stride_ != 0) return;
  kept_.push_back(s);
  // One slot stays free for the end sample.
  if (kept_.size() < maxSamples_) return;
  // Kept samples are offers 0, stride, 2*stride, ...: keeping the even ones
  // leaves offers 0, 2*stride, ..., which is what the doubled stride keeps next.
  size_t out = 0;
  for (size_t i = 0; i < kept_.size(); i += 2) kept_[out++] = kept_[i];
  kept_.resize(out);
  stride_ *= 2;
}

std::vector<TimelineSample> PhaseTimeline::finish(const TimelineSample& last) {
  kept_.push_back(last);
  return std::exchange(kept_, {});
}

}  // namespace vfiomm::sim
