// `random`: every runnable thread is equally likely at every choice point.
#pragma once

#include <random>

#include "check/strategy.h"

namespace vfiomm::check {

class RandomStrategy : public Strategy {
 public:
  void beginSchedule(uint64_t seed, uint64_t expectedChoices) override;
  void threadSpawned(unsigned id) override;
  unsigned pick(const std::vector<unsigned>& candidates, unsigned running) override;

 private:
  std::mt19937_64 rng_;
};

}  // namespace vfiomm::check
