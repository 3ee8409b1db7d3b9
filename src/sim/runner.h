// Runner: runs a Scenario against one design on a fresh Kernel, phase by
// phase, the threads of a phase on real threads started together, and
// collects what each phase cost (counters of the model, signals, lockdep
// reports, invariant-1 violations, modelled and wall time).
//
// Each run builds a kernel of its own, so designs run side by side on
// threads of one process (sim/work_pool.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/counter.h"
#include "sim/cost_model.h"
#include "sim/metrics.h"
#include "sim/scenario.h"
#include "sim/timeline.h"
#include "sync/sched_hook.h"
#include "sync/sched_threads.h"
#include "trace/trace_log.h"
#include "trace/tracer.h"
#include "uapi/invariant_monitor.h"
#include "vfio/mapping_design.h"

namespace vfiomm {
class Kernel;
class PageTableArena;
}  // namespace vfiomm

namespace vfiomm::sim {

struct PhaseResult {
  std::string name;
  Metrics m;
  std::vector<std::string> notes;  // syscalls that failed, and how
};

struct DesignResult {
  DesignKind design = DesignKind::kHugeFault;
  DmaPath dmaPath = DmaPath::kVaddr;
  std::string profile;
  std::vector<PhaseResult> phases;
  Metrics total;
  std::vector<std::string> setupNotes;
  // What the tracer kept, when RunOptions::traceLimit asked for a trace
  // (not part of the JSON results).
  std::shared_ptr<trace::TraceLog> trace;
  // The text of lockdep's first report, if any (not part of the JSON).
  std::string firstLockdepReport;
  // Cumulative counters sampled while the phases ran, in order (at most
  // PhaseTimeline::kDefaultMaxSamples per phase).
  std::vector<TimelineSample> timeline;
  // An invariant broke where the design should keep it: any violation or
  // lockdep report in a design that does not expect holes (DesignTraits).
  bool failed = false;
  // With RunOptions::monitorInvariants, what the monitor counted and said,
  // in the order it found them (not part of the JSON).
  InvariantCounts invariants;
  std::vector<std::string> invariantFindings;
  // With RunOptions::monitorInvariants, the first access a BAR recorded
  // with its decode off: where, on which device and from which CPU.
  std::string firstDecodeViolation;
};

struct RunOptions {
  bool quietLockdep = true;  // count lockdep reports without printing them
  // Trace the run, keeping the latest traceLimit events (0: no trace); the
  // caller writes the files (report/trace_files.h) from DesignResult::trace.
  size_t traceLimit = 0;
  std::string traceChromePath;  // --trace: Chrome trace-event JSON
  std::string traceFtracePath;  // --ftrace: trace-cmd report text
  // The trace's clock: wall time, or logical (a deterministically scheduled
  // run, whose trace must be a function of its schedule).
  trace::Tracer::Clock traceClock = trace::Tracer::Clock::kWall;
  // How far the run has got (0..1 of the whole scenario) and the phase
  // running; called by the thread that called runScenario, every few
  // milliseconds while a phase's threads run.
  std::function<void(double fraction, const std::string& phase)> onProgress;
  // The design's options (the seeded bugs of `vfiomm check --mutate`).
  DesignOptions designOptions;
  // A deterministic scheduler (src/check), whose thread 0 calls
  // runScenario: the runner installs `schedHook` in the run's kernel, the
  // phases' threads register with `scheduler`, and the runner waits for them
  // through it instead of polling.
  SchedThreads* scheduler = nullptr;
  SchedHook* schedHook = nullptr;
  // Page-table memory the run's kernel takes its tables from, for callers
  // that run many (KernelConfig::pageTables); null: its own.
  PageTableArena* pageTables = nullptr;
  // Watch invariants 2, 4 and 6 too (uapi/invariant_monitor.h): 2 at every
  // zap from set-up on, 4 once the phases are done, 6 once every process
  // exited. `vfiomm check` fails on them; other commands leave it off.
  bool monitorInvariants = false;
  // Who runs the zap an invariant-2 finding is about (the scheduler's
  // thread), for the finding's text; unset: not said.
  std::function<std::string()> whoRuns;
  // Called on the run's kernel once every process has exited, before the
  // kernel goes (tests read its lockdep graph here).
  std::function<void(Kernel&)> beforeTeardown;
};

// The Metrics fields that come from the model's counters (faults, inserts,
// fallbacks, zaps, TLB, memory_lock writes), as they moved since `before`;
// the other fields stay 0.
Metrics countedSince(const CounterSnapshot& before);

// Throws ScenarioError when the scenario cannot be set up at all (the
// kernel refuses its devices or profile).
DesignResult runScenario(const Scenario& scenario, DesignKind design,
                         const RunOptions& options = {});

}  // namespace vfiomm::sim
