// `pct`: probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi,
// Nagarakatte, ASPLOS 2010). Every thread gets a random priority when it is
// spawned; the highest-priority runnable thread always runs; at d-1 choice
// points picked uniformly among the k expected, the running thread drops to
// a priority below every initial one. A bug of depth d among n threads is
// then hit with probability at least 1/(n·k^(d-1)) per schedule.
#pragma once

#include <random>
#include <vector>

#include "check/strategy.h"

namespace vfiomm::check {

class PctStrategy : public Strategy {
 public:
  explicit PctStrategy(unsigned depth);

  void beginSchedule(uint64_t seed, uint64_t expectedChoices) override;
  void threadSpawned(unsigned id) override;
  unsigned pick(const std::vector<unsigned>& candidates, unsigned running) override;

 private:
  void lowerAtChangePoint(unsigned running);

  const unsigned depth_;
  std::mt19937_64 rng_;
  // Initial priorities are depth_ and above; change point i (1-based)
  // lowers to i, below them all.
  std::vector<uint64_t> priority_;
  std::vector<uint64_t> changePoints_;  // choice indices, ascending
  uint64_t choice_ = 0;
};

}  // namespace vfiomm::check
