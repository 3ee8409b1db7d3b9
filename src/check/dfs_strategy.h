// `dfs`: every schedule with at most `maxPreemptions` preemptions, each
// once, in depth-first order (iterative context bounding, CHESS, OSDI 2008).
// A preemption is picking another thread at a point where the running one
// could go on; switching where it blocks or ends is free. Each schedule
// replays the previous one up to its deepest point with an untried
// alternative, takes that alternative, then lets the running thread go on
// wherever it can. Assumes, as the scheduler guarantees, that the same
// choices lead to the same points.
#pragma once

#include <cstddef>
#include <vector>

#include "check/strategy.h"

namespace vfiomm::check {

class DfsStrategy : public Strategy {
 public:
  explicit DfsStrategy(unsigned maxPreemptions);

  void beginSchedule(uint64_t seed, uint64_t expectedChoices) override;
  void threadSpawned(unsigned id) override;
  unsigned pick(const std::vector<unsigned>& candidates, unsigned running) override;
  bool exhausted() const override { return exhausted_; }

 private:
  struct Point {
    std::vector<unsigned> order;  // the running thread first, if a candidate
    unsigned running;
    size_t tried;  // index into order of the current choice
    unsigned preemptionsBefore;
  };

  bool preempts(const Point& p, size_t index) const;
  bool advance(Point& p) const;

  const unsigned maxPreemptions_;
  std::vector<Point> path_;  // the points of the schedule that ran last
  size_t depth_ = 0;         // the next point of the running schedule
  bool started_ = false;
  bool exhausted_ = false;
};

}  // namespace vfiomm::check
