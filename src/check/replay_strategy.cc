#include "check/replay_strategy.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace vfiomm::check {

ReplayStrategy::ReplayStrategy(std::vector<unsigned> choices, Mode mode)
    : choices_(std::move(choices)), mode_(mode) {}

void ReplayStrategy::beginSchedule(uint64_t /*seed*/, uint64_t /*expectedChoices*/) {
  next_ = 0;
  divergence_.clear();
}

void ReplayStrategy::threadSpawned(unsigned /*id*/) {}

// Past the recording (or once diverged) nobody is preempted, so that the
// schedule still ends and reports what it did.
unsigned ReplayStrategy::pick(const std::vector<unsigned>& candidates, unsigned running) {
  const size_t at = next_++;
  if (at >= choices_.size() || !divergence_.empty()) return defaultPick(candidates, running);
  const unsigned want = choices_[at];
  if (std::find(candidates.begin(), candidates.end(), want) != candidates.end()) return want;
  if (mode_ == Mode::kStrict)
    divergence_ =
        fmt::format("the replay diverged at choice {}: thread {} is not runnable", at, want);
  return defaultPick(candidates, running);
}

}  // namespace vfiomm::check
