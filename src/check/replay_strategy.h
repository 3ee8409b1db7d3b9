// `replay`: makes the recorded choices again, one per choice point; past
// the recording nobody is preempted (defaultPick()), so a recording may be
// just the prefix that matters. Strict (a replay file), a schedule that
// asks for a thread the recording did not offer has diverged: the program
// is not the one recorded. Lenient (shrinking, which edits a recording),
// such a choice is made by default and the rest still followed.
#pragma once

#include <string>
#include <vector>

#include "check/strategy.h"

namespace vfiomm::check {

class ReplayStrategy : public Strategy {
 public:
  enum class Mode : uint8_t { kStrict, kLenient };

  explicit ReplayStrategy(std::vector<unsigned> choices, Mode mode = Mode::kStrict);

  void beginSchedule(uint64_t seed, uint64_t expectedChoices) override;
  void threadSpawned(unsigned id) override;
  unsigned pick(const std::vector<unsigned>& candidates, unsigned running) override;

  std::string divergence() const override { return divergence_; }

 private:
  const std::vector<unsigned> choices_;
  const Mode mode_;
  size_t next_ = 0;
  std::string divergence_;
};

}  // namespace vfiomm::check
