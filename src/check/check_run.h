// `vfiomm check`: runs one scenario on one design schedule after schedule,
// each on a fresh kernel under the deterministic scheduler, and stops at the
// first schedule that breaks invariant 1 (no access reaches a BAR whose
// decode is off), 2 (nothing translates into a range after its zap), 4
// (every entry maps its pfn), 6 (nothing left once every process exited) or
// makes lockdep report. A run is fully determined by
// (scenario, design, profile, mutations, strategy, seed): the failure it
// reports is that of the lowest schedule index that fails, and the counts
// are those of the schedules up to it, however many jobs ran them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/scenario.h"
#include "vfio/mapping_design.h"

namespace vfiomm::check {

enum class StrategyKind : uint8_t { kRandom, kPct, kDfs, kReplay };

std::string_view strategyName(StrategyKind kind);
std::optional<StrategyKind> strategyByName(std::string_view name);

// The first schedule that went wrong, with what it chose at every point.
struct Failure {
  uint64_t schedule = 0;  // 0-based, the index of its seed
  std::string what;       // the lockdep report or the broken invariant
  std::vector<unsigned> choices;
  uint64_t preemptions = 0;  // of the running thread, among the choices
};

struct CheckOptions {
  DesignKind design = DesignKind::kAddressSpace;
  DesignOptions designOptions;
  StrategyKind strategy = StrategyKind::kRandom;
  uint64_t seed = 1;
  unsigned depth = 3;        // pct's d
  unsigned preemptions = 2;  // dfs's bound
  uint64_t schedules = 1;
  // Threads that run schedules side by side, each schedule on a kernel of
  // its own (random and pct; dfs and replay run one at a time). The result
  // does not depend on it.
  unsigned jobs = 1;
  std::vector<unsigned> replay;  // kReplay: the recorded choices
  // A schedule longer than this is a livelock.
  uint64_t maxPoints = 1'000'000;
  // Called when a schedule deadlocks or livelocks; the model's threads are
  // stuck inside it and cannot be unwound, so it must not return (the CLI
  // writes its files and exits).
  std::function<void(const Failure&)> onStuck;
  // How many schedules have finished, of options.schedules; called on the
  // thread that called runCheck, after its schedules or every few
  // milliseconds while jobs run them (a progress bar).
  std::function<void(uint64_t done)> onProgress;
};

struct CheckResult {
  uint64_t schedules = 0;
  uint64_t points = 0;     // scheduling points, over all schedules
  uint64_t choices = 0;    // points with more than one runnable thread
  uint64_t distinct = 0;   // distinct choice sequences
  bool exhausted = false;  // dfs: every schedule in the bound ran
  std::optional<Failure> failure;
  std::string divergence;  // kReplay: where the run left the recording
};

// Throws sim::ScenarioError when the kernel refuses the scenario.
CheckResult runCheck(const sim::Scenario& scenario, const CheckOptions& options);

}  // namespace vfiomm::check
