#include "check/pct_strategy.h"

#include <algorithm>

namespace vfiomm::check {

namespace {

// Before the first schedule nobody knows k; this is about what the small
// check scenarios have.
constexpr uint64_t kDefaultChoices = 256;

}  // namespace

PctStrategy::PctStrategy(unsigned depth) : depth_(std::max(depth, 1u)) {}

void PctStrategy::beginSchedule(uint64_t seed, uint64_t expectedChoices) {
  rng_.seed(seed);
  priority_.clear();
  changePoints_.clear();
  choice_ = 0;
  const uint64_t k = expectedChoices != 0 ? expectedChoices : kDefaultChoices;
  for (unsigned i = 1; i < depth_; ++i) changePoints_.push_back(rng_() % k);
  std::sort(changePoints_.begin(), changePoints_.end());
}

// Random 63-bit priorities above depth_: distinct but with negligible
// chance, and ties go to the lower id, which is still deterministic.
void PctStrategy::threadSpawned(unsigned id) {
  if (priority_.size() <= id) priority_.resize(id + 1, 0);
  priority_[id] = depth_ + (rng_() >> 1);
}

void PctStrategy::lowerAtChangePoint(unsigned running) {
  for (size_t i = 0; i < changePoints_.size(); ++i)
    if (changePoints_[i] == choice_ && running < priority_.size()) priority_[running] = i + 1;
}

unsigned PctStrategy::pick(const std::vector<unsigned>& candidates, unsigned running) {
  lowerAtChangePoint(running);
  ++choice_;
  unsigned best = candidates.front();
  for (unsigned c : candidates)
    if (c < priority_.size() && priority_[c] > priority_[best]) best = c;
  return best;
}

}  // namespace vfiomm::check
