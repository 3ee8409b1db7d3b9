// The replay file `vfiomm check --replay-out` writes: the inputs of the run
// and the choices of the schedule that failed, enough for `--replay` to run
// exactly that schedule again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vfiomm::check {

struct ReplayFile {
  std::string scenario;  // the scenario file's path
  std::string design;
  std::string profile;  // empty: the scenario's
  std::vector<std::string> mutations;
  std::string strategy;  // the strategy that found it
  uint64_t seed = 0;
  unsigned depth = 0;
  uint64_t schedule = 0;
  std::string failure;
  // The thread picked at each choice point, as far as it matters: past
  // the last one the replay preempts nobody (ReplayStrategy), which is how
  // a shrunk schedule is written.
  std::vector<unsigned> choices;
};

std::string replayToJson(const ReplayFile& r);
// Throws sim::ScenarioError when `text` is not a replay file.
ReplayFile replayFromJson(const std::string& text, const std::string& path);

}  // namespace vfiomm::check
