#include "check/schedule_run.h"

#include <fmt/format.h>

#include "check/replay_strategy.h"
#include "check/scheduler.h"
#include "hw/page_table_arena.h"
#include "sim/runner.h"

namespace vfiomm::check {

namespace {

// The broken invariant of a finished schedule, if any: invariant 1, then
// invariant 7 (a device's DMA; type1's hazard counts too, since breaking it
// is what the hazard is), then the first thing the monitor found
// (invariant 2 at a zap, 4 and 6 at the end), which names the invariant,
// the address and the CPU or mm.
std::optional<std::string> brokenInvariant(const sim::DesignResult& r) {
  for (const sim::PhaseResult& ph : r.phases)
    if (ph.m.violations != 0)
      return fmt::format(
          "invariant 1 broken in phase '{}': {} access(es) reached a BAR whose memory decode was "
          "off; {}",
          ph.name, ph.m.violations, r.firstDecodeViolation);
  for (const sim::PhaseResult& ph : r.phases)
    if (ph.m.dmaViolations != 0)
      return fmt::format(
          "invariant 7 broken in phase '{}': {} device DMA(s) reached a BAR whose memory decode "
          "was off",
          ph.name, ph.m.dmaViolations);
  const InvariantCounts& c = r.invariants;
  if (c.staleAfterZap + c.wrongEntries + c.leaks != 0)
    return fmt::format("{} ({} stale after a zap, {} wrong entries, {} leaks)",
                       r.invariantFindings.front(), c.staleAfterZap, c.wrongEntries, c.leaks);
  return std::nullopt;
}

std::string firstWarningLine(const std::string& report) {
  const size_t at = report.find("WARNING: ");
  if (at == std::string::npos) return report.substr(0, report.find('\n'));
  return report.substr(at, report.find('\n', at) - at);
}

// What broke in a finished schedule, or nothing. A broken invariant is
// what the user must see, so it comes before a lockdep report of the same
// schedule, which it names: the legacy vma-list design breaks its
// mmap_lock rule at every fault, and its fork and mremap holes would hide
// behind that report.
std::optional<std::string> brokenBy(const sim::DesignResult& r) {
  const std::optional<std::string> invariant = brokenInvariant(r);
  if (r.total.lockdepReports == 0) return invariant;
  const std::string lockdep =
      r.firstLockdepReport.empty() ? std::string("lockdep reported") : r.firstLockdepReport;
  if (!invariant) return lockdep;
  return fmt::format("{}; lockdep reported too: {}", *invariant, firstWarningLine(lockdep));
}

}  // namespace

ScheduleOutcome runSchedule(const sim::Scenario& scenario, const CheckOptions& options,
                            Strategy& strategy, uint64_t index, PageTableArena& pageTables,
                            size_t traceLimit) {
  Scheduler sched(strategy, options.maxPoints);
  sched.setStuckHandler([&](const std::string& report) {
    options.onStuck(Failure{index, report, sched.choices()});
  });
  sim::RunOptions run;
  run.designOptions = options.designOptions;
  run.scheduler = &sched;
  run.schedHook = &sched;
  run.pageTables = &pageTables;
  run.monitorInvariants = true;
  run.whoRuns = [&sched] { return fmt::format("thread {}", sched.running()); };
  run.traceLimit = traceLimit;
  run.traceClock = trace::Tracer::Clock::kLogical;
  sched.start();
  const sim::DesignResult r = sim::runScenario(scenario, options.design, run);
  sched.finish();

  ScheduleOutcome out;
  out.points = sched.points();
  out.choices = sched.choices();
  out.defaults = sched.defaults();
  out.preemptions = sched.preemptions();
  out.broken = brokenBy(r);
  out.divergence = strategy.divergence();
  out.trace = r.trace;
  return out;
}

ScheduleOutcome replaySchedule(const sim::Scenario& scenario, const CheckOptions& options,
                               const std::vector<unsigned>& choices, uint64_t index,
                               size_t traceLimit) {
  ReplayStrategy replay(choices);
  replay.beginSchedule(0, 0);
  PageTableArena pageTables;
  ScheduleOutcome o = runSchedule(scenario, options, replay, index, pageTables, traceLimit);
  // A mutated schedule may have leaked tables (invariant 6): its kernel is gone.
  if (pageTables.pagesInUse() != 0) pageTables.forgetLeaked();
  return o;
}

std::string failureKind(const std::string& what) {
  if (what.rfind("invariant ", 0) == 0) return what.substr(0, what.find_first_of(" :", 10));
  const size_t warning = what.find("WARNING: ");
  if (warning == std::string::npos) return what.substr(0, what.find('\n'));
  std::string line = what.substr(warning, what.find('\n', warning) - warning);
  // A WARN splat's line names the CPU and PID before the place.
  const size_t at = line.find(" at ");
  if (line.rfind("WARNING: CPU:", 0) == 0 && at != std::string::npos)
    line = "WARNING:" + line.substr(at);
  return line;
}

}  // namespace vfiomm::check
