// A strategy decides, at each scheduling point where more than one thread
// could run, which one runs next. Given the same seed and the same program
// it makes the same choices, which is what makes a schedule replayable.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace vfiomm::check {

class Strategy {
 public:
  virtual ~Strategy() = default;

  // A new schedule starts; `expectedChoices` is how many choice points the
  // previous schedule had (PCT spreads its priority changes over them).
  virtual void beginSchedule(uint64_t seed, uint64_t expectedChoices) = 0;
  // Thread `id` was spawned (ids count up from 0 within a schedule).
  virtual void threadSpawned(unsigned id) = 0;
  // `candidates`: the runnable thread ids, ascending, at least two;
  // `running`: the thread at the point (it may be blocked, so not a
  // candidate). Returns one of the candidates.
  virtual unsigned pick(const std::vector<unsigned>& candidates, unsigned running) = 0;
  // An exhaustive strategy says, once beginSchedule() found no schedule
  // left to run, that the space is covered.
  virtual bool exhausted() const { return false; }
  // A replaying strategy says where the schedule left its recording
  // (empty: it did not, or the strategy does not replay).
  virtual std::string divergence() const { return {}; }
};

// The pick that preempts nobody: the running thread if it can go on, else
// the lowest id. What a replay does past its recording, and what shrinking
// turns a choice into.
inline unsigned defaultPick(const std::vector<unsigned>& candidates, unsigned running) {
  return std::find(candidates.begin(), candidates.end(), running) != candidates.end()
             ? running
             : candidates.front();
}

}  // namespace vfiomm::check
