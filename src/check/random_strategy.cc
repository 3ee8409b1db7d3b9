#include "check/random_strategy.h"

namespace vfiomm::check {

void RandomStrategy::beginSchedule(uint64_t seed, uint64_t /*expectedChoices*/) { rng_.seed(seed); }

void RandomStrategy::threadSpawned(unsigned /*id*/) {}

// A plain modulo rather than a distribution: std::uniform_int_distribution
// may differ between standard libraries, and a replay must not.
unsigned RandomStrategy::pick(const std::vector<unsigned>& candidates, unsigned /*running*/) {
  return candidates[rng_() % candidates.size()];
}

}  // namespace vfiomm::check
