#include "check/dfs_strategy.h"

#include <algorithm>

namespace vfiomm::check {

DfsStrategy::DfsStrategy(unsigned maxPreemptions) : maxPreemptions_(maxPreemptions) {}

// Backtracks: the deepest point of the last schedule with an alternative
// inside the bound takes it; deeper points are forgotten.
void DfsStrategy::beginSchedule(uint64_t /*seed*/, uint64_t /*expectedChoices*/) {
  path_.resize(std::min(path_.size(), depth_));
  depth_ = 0;
  if (!started_) {
    started_ = true;
    return;
  }
  while (!path_.empty() && !advance(path_.back())) path_.pop_back();
  exhausted_ = path_.empty();
}

void DfsStrategy::threadSpawned(unsigned /*id*/) {}

bool DfsStrategy::preempts(const Point& p, size_t index) const {
  return index != 0 && p.order.front() == p.running;
}

bool DfsStrategy::advance(Point& p) const {
  for (size_t i = p.tried + 1; i < p.order.size(); ++i) {
    if (p.preemptionsBefore + (preempts(p, i) ? 1u : 0u) > maxPreemptions_) continue;
    p.tried = i;
    return true;
  }
  return false;
}

unsigned DfsStrategy::pick(const std::vector<unsigned>& candidates, unsigned running) {
  if (depth_ < path_.size()) {  // the prefix the last schedule shares
    const Point& p = path_[depth_++];
    return p.order[p.tried];
  }
  Point p;
  p.running = running;
  p.order = candidates;
  const auto it = std::find(p.order.begin(), p.order.end(), running);
  if (it != p.order.end()) std::rotate(p.order.begin(), it, it + 1);
  p.tried = 0;
  p.preemptionsBefore = 0;
  if (!path_.empty()) {
    const Point& last = path_.back();
    p.preemptionsBefore = last.preemptionsBefore + (preempts(last, last.tried) ? 1u : 0u);
  }
  path_.push_back(std::move(p));
  ++depth_;
  return path_.back().order.front();
}

}  // namespace vfiomm::check
