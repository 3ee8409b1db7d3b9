#include "check/shrink.h"

#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "check/replay_strategy.h"
#include "check/schedule_run.h"
#include "hw/page_table_arena.h"

namespace vfiomm::check {

namespace {

// A schedule that reproduced the failure: its recording, cut after the
// last choice that was not the default, and where those choices are.
struct Candidate {
  std::vector<unsigned> choices;
  std::vector<unsigned> defaults;
  uint64_t preemptions = 0;
  std::string what;
};

class Shrinker {
 public:
  Shrinker(const sim::Scenario& scenario, const CheckOptions& options, uint64_t maxRuns)
      : scenario_(scenario), options_(options), maxRuns_(maxRuns) {}
  // Every kernel is gone: a table still in use is one a mutated schedule
  // leaked (invariant 6), which nothing reaches any more.
  ~Shrinker() {
    if (pageTables_.pagesInUse() != 0) pageTables_.forgetLeaked();
  }
  Shrinker(const Shrinker&) = delete;
  Shrinker& operator=(const Shrinker&) = delete;

  // Replays `choices` leniently; the schedule it ran if it ended in `kind`.
  std::optional<Candidate> attempt(const std::vector<unsigned>& choices, const std::string& kind) {
    ++runs_;
    ReplayStrategy replay(choices, ReplayStrategy::Mode::kLenient);
    replay.beginSchedule(0, 0);
    ScheduleOutcome o = runSchedule(scenario_, options_, replay, 0, pageTables_);
    if (!o.broken || failureKind(*o.broken) != kind) return std::nullopt;
    size_t keep = o.choices.size();
    while (keep > 0 && o.choices[keep - 1] == o.defaults[keep - 1]) --keep;
    o.choices.resize(keep);
    o.defaults.resize(keep);
    return Candidate{std::move(o.choices), std::move(o.defaults), o.preemptions,
                     std::move(*o.broken)};
  }

  bool spent() const { return runs_ >= maxRuns_; }
  uint64_t runs() const { return runs_; }

  // One pass over the choices that are not the default, last first: drop
  // everything from it on, else make just it the default. True when an
  // edit was kept.
  bool pass(Candidate& best, const std::string& kind) {
    bool kept = false;
    for (size_t i = best.choices.size(); i-- > 0 && !spent();) {
      if (i >= best.choices.size() || best.choices[i] == best.defaults[i]) continue;
      std::vector<unsigned> cut(best.choices.begin(),
                                best.choices.begin() + static_cast<std::ptrdiff_t>(i));
      std::optional<Candidate> c = attempt(cut, kind);
      if (!c && !spent()) {
        std::vector<unsigned> normal = best.choices;
        normal[i] = best.defaults[i];
        c = attempt(normal, kind);
      }
      if (c && smaller(*c, best)) {
        best = std::move(*c);
        kept = true;
      }
    }
    return kept;
  }

 private:
  // Fewer preemptions first, then fewer other choices a replay must make,
  // then a shorter recording.
  static bool smaller(const Candidate& a, const Candidate& b) {
    return std::make_tuple(a.preemptions, edits(a), a.choices.size()) <
           std::make_tuple(b.preemptions, edits(b), b.choices.size());
  }
  static size_t edits(const Candidate& c) {
    size_t n = 0;
    for (size_t i = 0; i < c.choices.size(); ++i) n += c.choices[i] != c.defaults[i] ? 1u : 0u;
    return n;
  }

  const sim::Scenario& scenario_;
  const CheckOptions& options_;
  const uint64_t maxRuns_;
  PageTableArena pageTables_;
  uint64_t runs_ = 0;
};

}  // namespace

ShrinkResult shrinkFailure(const sim::Scenario& scenario, const CheckOptions& options,
                           const Failure& found, uint64_t maxRuns) {
  ShrinkResult out;
  out.failure = found;
  out.choicesBefore = found.choices.size();
  out.preemptionsBefore = found.preemptions;
  const std::string kind = failureKind(found.what);
  Shrinker shrinker(scenario, options, maxRuns);
  // The found schedule itself, replayed, gives where its defaults lie.
  std::optional<Candidate> best = shrinker.attempt(found.choices, kind);
  if (best && !best->choices.empty() && !shrinker.spent()) {
    // The default schedule first: a failure that needs no choice (a lockdep
    // cycle any run shows) is then kept in one replay, where the passes,
    // which edit from the end, would replay a long recording once per
    // choice they drop.
    if (std::optional<Candidate> none = shrinker.attempt({}, kind)) best = std::move(none);
  }
  if (best) {
    while (!shrinker.spent() && shrinker.pass(*best, kind)) {
    }
    out.failure.what = best->what;
    out.failure.choices = best->choices;
    out.failure.preemptions = best->preemptions;
  }
  out.runs = shrinker.runs();
  return out;
}

}  // namespace vfiomm::check
