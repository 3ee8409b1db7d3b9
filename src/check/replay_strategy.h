// `replay`: makes the recorded choices again, one per choice point. A
// schedule that asks for a thread the recording did not offer has
// diverged: the program is not the one recorded.
#pragma once

#include <string>
#include <vector>

#include "check/strategy.h"

namespace vfiomm::check {

class ReplayStrategy : public Strategy {
 public:
  explicit ReplayStrategy(std::vector<unsigned> choices);

  void beginSchedule(uint64_t seed, uint64_t expectedChoices) override;
  void threadSpawned(unsigned id) override;
  unsigned pick(const std::vector<unsigned>& candidates, unsigned running) override;

  std::string divergence() const override { return divergence_; }

 private:
  const std::vector<unsigned> choices_;
  size_t next_ = 0;
  std::string divergence_;
};

}  // namespace vfiomm::check
