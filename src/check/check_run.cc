#include "check/check_run.h"

#include <memory>
#include <unordered_set>

#include <fmt/format.h>

#include "base/assert.h"
#include "check/dfs_strategy.h"
#include "check/pct_strategy.h"
#include "check/random_strategy.h"
#include "check/replay_strategy.h"
#include "check/scheduler.h"
#include "mm/page_table_arena.h"
#include "sim/runner.h"

namespace vfiomm::check {

namespace {

// Every schedule gets its own seed, spread so that neighbouring seeds of
// the command line do not share schedules (splitmix64's finaliser).
uint64_t scheduleSeed(uint64_t seed, uint64_t schedule) {
  uint64_t z = seed + (schedule + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// FNV-1a over the choice sequence: two schedules that chose alike ran alike.
uint64_t hashChoices(const std::vector<unsigned>& choices) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned c : choices) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::unique_ptr<Strategy> makeStrategy(const CheckOptions& o) {
  switch (o.strategy) {
    case StrategyKind::kRandom: return std::make_unique<RandomStrategy>();
    case StrategyKind::kPct: return std::make_unique<PctStrategy>(o.depth);
    case StrategyKind::kDfs: return std::make_unique<DfsStrategy>(o.preemptions);
    case StrategyKind::kReplay: return std::make_unique<ReplayStrategy>(o.replay);
  }
  return nullptr;
}

// What broke in a finished schedule, or nothing: lockdep, then invariant 1,
// then the first thing the monitor found (invariant 2 at a zap, 4 and 6 at
// the end), which names the invariant, the address and the CPU or mm.
std::optional<std::string> brokenBy(const sim::DesignResult& r) {
  if (r.total.lockdepReports != 0)
    return r.firstLockdepReport.empty() ? std::string("lockdep reported") : r.firstLockdepReport;
  for (const sim::PhaseResult& ph : r.phases)
    if (ph.m.violations != 0)
      return fmt::format(
          "invariant 1 broken in phase '{}': {} access(es) reached a BAR whose memory decode was off; {}",
          ph.name, ph.m.violations, r.firstDecodeViolation);
  const InvariantCounts& c = r.invariants;
  if (c.staleAfterZap + c.wrongEntries + c.leaks != 0)
    return fmt::format("{} ({} stale after a zap, {} wrong entries, {} leaks)",
                       r.invariantFindings.front(), c.staleAfterZap, c.wrongEntries, c.leaks);
  return std::nullopt;
}

}  // namespace

std::string_view strategyName(StrategyKind kind) {
  switch (kind) {
    case StrategyKind::kRandom: return "random";
    case StrategyKind::kPct: return "pct";
    case StrategyKind::kDfs: return "dfs";
    case StrategyKind::kReplay: return "replay";
  }
  return "?";
}

std::optional<StrategyKind> strategyByName(std::string_view name) {
  for (StrategyKind k : {StrategyKind::kRandom, StrategyKind::kPct, StrategyKind::kDfs,
                         StrategyKind::kReplay})
    if (strategyName(k) == name) return k;
  return std::nullopt;
}

CheckResult runCheck(const sim::Scenario& scenario, const CheckOptions& options) {
  VFIOMM_ASSERT_MSG(static_cast<bool>(options.onStuck), "runCheck() needs an onStuck handler");
  CheckResult result;
  std::unordered_set<uint64_t> seen;
  const std::unique_ptr<Strategy> strategy = makeStrategy(options);
  uint64_t lastChoices = 0;
  // One pool of page-table memory for every schedule's kernel.
  PageTableArena pageTables;
  const uint64_t schedules = options.strategy == StrategyKind::kReplay ? 1 : options.schedules;
  for (uint64_t i = 0; i < schedules; ++i) {
    strategy->beginSchedule(scheduleSeed(options.seed, i), lastChoices);
    if (strategy->exhausted()) {
      result.exhausted = true;
      break;
    }
    Scheduler sched(*strategy, options.maxPoints);
    sched.setStuckHandler([&](const std::string& report) {
      options.onStuck(Failure{i, report, sched.choices()});
    });
    sim::RunOptions run;
    run.designOptions = options.designOptions;
    run.scheduler = &sched;
    run.schedHook = &sched;
    run.pageTables = &pageTables;
    run.monitorInvariants = true;
    run.whoRuns = [&sched] { return fmt::format("thread {}", sched.running()); };
    sched.start();
    const sim::DesignResult r = sim::runScenario(scenario, options.design, run);
    sched.finish();

    ++result.schedules;
    result.points += sched.points();
    result.choices += sched.choices().size();
    lastChoices = sched.choices().size();
    seen.insert(hashChoices(sched.choices()));
    result.divergence = strategy->divergence();
    if (auto what = brokenBy(r)) {
      result.failure = Failure{i, std::move(*what), sched.choices()};
      break;
    }
  }
  result.distinct = seen.size();
  // Every kernel is gone: a table still in use is one a mutated schedule
  // leaked (invariant 6), which nothing reaches any more.
  if (pageTables.pagesInUse() != 0) pageTables.forgetLeaked();
  return result;
}

}  // namespace vfiomm::check
