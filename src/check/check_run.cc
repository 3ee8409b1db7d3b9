#include "check/check_run.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "base/assert.h"
#include "check/dfs_strategy.h"
#include "check/pct_strategy.h"
#include "check/random_strategy.h"
#include "check/replay_strategy.h"
#include "check/schedule_run.h"
#include "hw/page_table_arena.h"
#include "sim/work_pool.h"

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
  for (StrategyKind k :
       {StrategyKind::kRandom, StrategyKind::kPct, StrategyKind::kDfs, StrategyKind::kReplay})
    if (strategyName(k) == name) return k;
  return std::nullopt;
}

namespace {

// What one schedule left for the totals: they are summed in index order up
// to the first failure once every job is done.
struct Tally {
  uint64_t index = 0;
  uint64_t points = 0;
  uint64_t choices = 0;
  uint64_t hash = 0;
};

// The schedules of a run, handed out by index to the jobs. A job stops
// taking them past the lowest failing index found so far; the lower ones
// still run, as one of them may fail too.
class ScheduleQueue {
 public:
  ScheduleQueue(uint64_t first, uint64_t end) : next_(first), end_(end) {}

  // The next index to run, or nothing once the run is over.
  std::optional<uint64_t> take() {
    const uint64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= end_ || i > firstFailure_.load(std::memory_order_relaxed)) return std::nullopt;
    return i;
  }
  void done() { done_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t doneCount() const { return done_.load(std::memory_order_relaxed); }

  void failed(Failure f) {
    const std::lock_guard guard(mu_);
    if (failure_ && failure_->schedule < f.schedule) return;
    firstFailure_.store(f.schedule, std::memory_order_relaxed);
    failure_ = std::move(f);
  }
  std::optional<Failure> failure() {
    const std::lock_guard guard(mu_);
    return failure_;
  }

 private:
  std::atomic<uint64_t> next_;
  const uint64_t end_;
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> firstFailure_{UINT64_MAX};
  std::mutex mu_;  // the failure; not a model lock
  std::optional<Failure> failure_;
};

std::optional<Failure> failureOf(uint64_t index, ScheduleOutcome& o) {
  if (!o.broken) return std::nullopt;
  return Failure{index, std::move(*o.broken), std::move(o.choices), o.preemptions};
}

Tally tallyOf(uint64_t index, const ScheduleOutcome& o) {
  return {index, o.points, o.choices.size(), hashChoices(o.choices)};
}

// Strategies whose schedules depend on nothing but their seed (and pct's k,
// fixed by schedule 0), so that jobs may run them in any order.
bool independent(StrategyKind kind) {
  return kind == StrategyKind::kRandom || kind == StrategyKind::kPct;
}

// One job: schedules from `queue` until it is empty, each on a fresh kernel,
// with pages from a pool of its own.
void runJob(const sim::Scenario& scenario, const CheckOptions& options, uint64_t expectedChoices,
            ScheduleQueue& queue, std::vector<Tally>& tallies) {
  const std::unique_ptr<Strategy> strategy = makeStrategy(options);
  PageTableArena pageTables;
  while (const auto i = queue.take()) {
    strategy->beginSchedule(scheduleSeed(options.seed, *i), expectedChoices);
    ScheduleOutcome o = runSchedule(scenario, options, *strategy, *i, pageTables);
    tallies.push_back(tallyOf(*i, o));
    if (auto f = failureOf(*i, o)) queue.failed(std::move(*f));
    queue.done();
  }
  // Every kernel is gone: a table still in use is one a mutated schedule
  // leaked (invariant 6), which nothing reaches any more.
  if (pageTables.pagesInUse() != 0) pageTables.forgetLeaked();
}

// dfs and replay: each schedule follows from the one before.
void runSequentially(const sim::Scenario& scenario, const CheckOptions& options,
                     CheckResult& result, std::vector<Tally>& tallies) {
  const std::unique_ptr<Strategy> strategy = makeStrategy(options);
  PageTableArena pageTables;
  const uint64_t schedules = options.strategy == StrategyKind::kReplay ? 1 : options.schedules;
  for (uint64_t i = 0; i < schedules; ++i) {
    strategy->beginSchedule(scheduleSeed(options.seed, i), 0);
    if (strategy->exhausted()) {
      result.exhausted = true;
      break;
    }
    ScheduleOutcome o = runSchedule(scenario, options, *strategy, i, pageTables);
    tallies.push_back(tallyOf(i, o));
    result.divergence = o.divergence;
    result.failure = failureOf(i, o);
    if (result.failure) break;
    if (options.onProgress) options.onProgress(i + 1);
  }
  if (pageTables.pagesInUse() != 0) pageTables.forgetLeaked();
}

// random and pct: schedule 0 on the calling thread (it gives pct its k, the
// choice points a schedule has), then the rest on options.jobs jobs.
void runIndependently(const sim::Scenario& scenario, const CheckOptions& options,
                      CheckResult& result, std::vector<Tally>& tallies) {
  ScheduleQueue first(0, std::min<uint64_t>(options.schedules, 1));
  runJob(scenario, options, 0, first, tallies);
  result.failure = first.failure();
  if (result.failure || options.schedules <= 1) return;
  const uint64_t k = tallies.front().choices;
  ScheduleQueue queue(1, options.schedules);
  const unsigned jobs = std::max(options.jobs, 1u);
  std::vector<std::vector<Tally>> perJob(jobs);
  const auto progress = [&] {
    if (options.onProgress) options.onProgress(1 + queue.doneCount());
  };
  sim::runConcurrently(
      jobs, jobs, [&](size_t j) { runJob(scenario, options, k, queue, perJob[j]); }, {}, progress);
  for (const std::vector<Tally>& t : perJob) tallies.insert(tallies.end(), t.begin(), t.end());
  result.failure = queue.failure();
}

}  // namespace

CheckResult runCheck(const sim::Scenario& scenario, const CheckOptions& options) {
  VFIOMM_ASSERT_MSG(static_cast<bool>(options.onStuck), "runCheck() needs an onStuck handler");
  CheckResult result;
  std::vector<Tally> tallies;
  if (independent(options.strategy))
    runIndependently(scenario, options, result, tallies);
  else
    runSequentially(scenario, options, result, tallies);
  // The totals are those of the schedules up to the first failure: a job
  // may have run later ones before it learnt of it.
  const uint64_t last = result.failure ? result.failure->schedule : UINT64_MAX;
  std::unordered_set<uint64_t> seen;
  for (const Tally& t : tallies) {
    if (t.index > last) continue;
    ++result.schedules;
    result.points += t.points;
    result.choices += t.choices;
    seen.insert(t.hash);
  }
  result.distinct = seen.size();
  return result;
}

}  // namespace vfiomm::check
