// The timeline of a run: cumulative counters sampled while the phases run,
// so a report can show when faults, zaps and shootdowns happened and not
// only how many there were (docs/report.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vfiomm::sim {

// Counters summed from the start of the run's first phase up to one moment.
struct TimelineSample {
  size_t phase = 0;  // index into DesignResult::phases
  uint64_t faults = 0;
  uint64_t zaps = 0;
  uint64_t zappedEntries = 0;
  uint64_t shootdowns = 0;
  double modeledNs = 0;  // the scenario's cost model applied to the counters so far
};

// The samples of one phase, kept to at most `maxSamples` however long the
// phase runs: when full it drops every other sample and from then on keeps
// only every other offer, so the kept ones stay evenly spread. The first
// sample (the phase start) and the last (its end) are always kept.
class PhaseTimeline {
 public:
  static constexpr size_t kDefaultMaxSamples = 200;

  explicit PhaseTimeline(size_t maxSamples = kDefaultMaxSamples);

  void offer(const TimelineSample& s);
  // Appends the end sample and hands over everything kept.
  std::vector<TimelineSample> finish(const TimelineSample& last);

 private:
  size_t maxSamples_;
  size_t stride_ = 1;  // keep one offer in `stride_`
  size_t offered_ = 0;
  std::vector<TimelineSample> kept_;
};

}  // namespace vfiomm::sim
