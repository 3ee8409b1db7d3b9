// One schedule of `vfiomm check`: a fresh kernel runs the scenario under the
// deterministic scheduler and a strategy, and what it broke, if anything, is
// read from the run. runCheck() runs them one after another, shrinking
// replays edited ones, --trace replays the failing one with the tracer on.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "check/check_run.h"
#include "check/strategy.h"
#include "sim/scenario.h"
#include "trace/trace_log.h"

namespace vfiomm {
class PageTableArena;
}  // namespace vfiomm

namespace vfiomm::check {

struct ScheduleOutcome {
  uint64_t points = 0;
  std::vector<unsigned> choices;   // Scheduler::choices()
  std::vector<unsigned> defaults;  // Scheduler::defaults()
  uint64_t preemptions = 0;
  std::optional<std::string> broken;       // the lockdep report or the broken invariant
  std::string divergence;                  // a strict replay that left its recording
  std::shared_ptr<trace::TraceLog> trace;  // with a traceLimit
};

// Schedule `index` of a run with `options` (its design, mutations, onStuck),
// choices made by `strategy`, which beginSchedule() already prepared. With
// `traceLimit` the tracer keeps that many events, on a logical clock that
// makes the trace a function of the schedule.
ScheduleOutcome runSchedule(const sim::Scenario& scenario, const CheckOptions& options,
                            Strategy& strategy, uint64_t index, PageTableArena& pageTables,
                            size_t traceLimit = 0);

// Replays `choices` strictly, as schedule `index` of a run with `options`,
// on a kernel of its own; with `traceLimit`, traced (--trace).
ScheduleOutcome replaySchedule(const sim::Scenario& scenario, const CheckOptions& options,
                               const std::vector<unsigned>& choices, uint64_t index,
                               size_t traceLimit = 0);

// The kind of a failure, which shrinking keeps: "invariant N", or the
// lockdep rule (its WARNING line, without the CPU and PID).
std::string failureKind(const std::string& what);

}  // namespace vfiomm::check
