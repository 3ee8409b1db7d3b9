#include "tools/check_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "check/check_run.h"
#include "check/mutation.h"
#include "check/replay_file.h"
#include "check/schedule_run.h"
#include "check/shrink.h"
#include "report/output_file.h"
#include "report/progress_bar.h"
#include "sim/scenario.h"
#include "trace/chrome_trace_writer.h"
#include "trace/tracer.h"

namespace vfiomm::tools {

using check::applyMutation;
using check::CheckOptions;
using check::CheckResult;
using check::Failure;
using check::mutationNames;
using check::ReplayFile;
using check::replayFromJson;
using check::ScheduleOutcome;
using check::ShrinkResult;
using check::strategyByName;
using check::StrategyKind;

namespace {

constexpr int kExitViolation = 1;
constexpr int kExitDiverged = 3;

ReplayFile loadReplay(CheckCommand& cmd) {
  std::ifstream in(cmd.replayIn);
  if (!in) throw sim::ScenarioError(fmt::format("{}: cannot read the replay file", cmd.replayIn));
  std::stringstream text;
  text << in.rdbuf();
  const ReplayFile r = replayFromJson(text.str(), cmd.replayIn);
  applyReplay(r, cmd);
  return r;
}

DesignKind parseDesign(const std::string& name) {
  if (auto d = designByName(name)) return *d;
  std::vector<std::string_view> known;
  for (DesignKind k : allDesigns()) known.push_back(designName(k));
  throw sim::ScenarioError(
      fmt::format("unknown design '{}' (known: {})", name, fmt::join(known, ", ")));
}

}  // namespace

void applyReplay(const ReplayFile& r, CheckCommand& cmd) {
  cmd.scenario = r.scenario;
  cmd.design = r.design;
  cmd.profile = r.profile;
  cmd.mutations = r.mutations;
  cmd.strategy = r.strategy;
  cmd.seed = r.seed;
  cmd.depth = r.depth;
}

CheckOptions checkOptionsOf(const CheckCommand& cmd, std::vector<unsigned> replay) {
  CheckOptions o;
  o.design = parseDesign(cmd.design);
  for (const std::string& m : cmd.mutations)
    if (!applyMutation(m, o.designOptions))
      throw sim::ScenarioError(
          fmt::format("unknown mutation '{}' (known: {})", m, fmt::join(mutationNames(), ", ")));
  if (!cmd.replayIn.empty()) {
    o.strategy = StrategyKind::kReplay;
    o.replay = std::move(replay);
  } else {
    const auto s = strategyByName(cmd.strategy);
    if (!s || *s == StrategyKind::kReplay)
      throw sim::ScenarioError(
          fmt::format("unknown strategy '{}' (known: random, pct, dfs; replay with --replay FILE)",
                      cmd.strategy));
    o.strategy = *s;
  }
  if (cmd.depth == 0) throw sim::ScenarioError("--depth must be at least 1");
  o.seed = cmd.seed;
  o.depth = cmd.depth;
  o.preemptions = cmd.preemptions;
  o.schedules = cmd.schedules;
  if (cmd.jobs == 0) throw sim::ScenarioError("--jobs must be at least 1");
  o.jobs = cmd.jobs;
  return o;
}

namespace {

ReplayFile replayOf(const CheckCommand& cmd, const Failure& f) {
  ReplayFile r;
  r.scenario = cmd.scenario;
  r.design = cmd.design;
  r.profile = cmd.profile;
  r.mutations = cmd.mutations;
  r.strategy = cmd.strategy;
  r.seed = cmd.seed;
  r.depth = cmd.depth;
  r.schedule = f.schedule;
  r.failure = f.what;
  r.choices = f.choices;
  return r;
}

void printFailure(const Failure& f) {
  fmt::print("VIOLATION in schedule {} ({} choices, {} preemptions):\n{}\n", f.schedule,
             f.choices.size(), f.preemptions, f.what);
}

// The found schedule, shrunk to fewer preemptions and a shorter recording.
Failure shrunk(const sim::Scenario& sc, const CheckOptions& options, const Failure& found) {
  const ShrinkResult s = shrinkFailure(sc, options, found);
  fmt::print("shrunk from {} choices / {} preemptions to {} / {} ({} replays)\n", s.choicesBefore,
             s.preemptionsBefore, s.failure.choices.size(), s.failure.preemptions, s.runs);
  return s.failure;
}

// The failing schedule again, traced on a logical clock: the same schedule
// gives the same bytes.
void writeTrace(report::OutputFile* out, const sim::Scenario& sc, const CheckOptions& options,
                const Failure& f) {
  if (out == nullptr) return;
  const ScheduleOutcome o =
      replaySchedule(sc, options, f.choices, f.schedule, trace::Tracer::kDefaultLimit);
  if (o.trace == nullptr || !o.broken || *o.broken != f.what)
    throw report::OutputError(
        fmt::format("{}: the traced replay did not end in the failure", out->path()));
  trace::writeChromeTrace(out->stream(), {o.trace.get()});
  out->commit();
  fmt::print("trace: {}\n", out->path());
}

void writeReplay(report::OutputFile* out, const CheckCommand& cmd, const Failure& f) {
  if (out == nullptr) return;
  out->stream() << replayToJson(replayOf(cmd, f));
  out->commit();
  fmt::print("replay: {}\n", out->path());
}

void printFigures(const CheckCommand& cmd, const CheckOptions& options, const CheckResult& r,
                  double secs) {
  const double n = static_cast<double>(r.schedules);
  fmt::print("check {} on {} (strategy {}, seed {}{}{})\n", cmd.scenario, cmd.design,
             strategyName(options.strategy), cmd.seed,
             options.strategy == StrategyKind::kPct ? fmt::format(", depth {}", cmd.depth) : "",
             options.strategy == StrategyKind::kDfs
                 ? fmt::format(", preemptions {}", cmd.preemptions)
                 : "");
  fmt::print("schedules run:          {}\n", r.schedules);
  fmt::print("points per schedule:    {:.1f} ({:.1f} with a choice)\n",
             static_cast<double>(r.points) / n, static_cast<double>(r.choices) / n);
  fmt::print("distinct interleavings: {}\n", r.distinct);
  if (r.exhausted) fmt::print("space exhausted: every schedule within the bound ran\n");
  fmt::print("time:                   {:.3f} s ({:.0f} schedules/s)\n", secs, n / secs);
}

// A replay must end as the recorded schedule did, or the model is not
// deterministic: that is vfiomm's bug, not the design's.
int endReplay(const sim::Scenario& sc, const CheckOptions& options, const ReplayFile& recorded,
              const CheckResult& r, report::OutputFile* traceOut) {
  if (!r.failure || r.failure->what != recorded.failure) {
    fmt::print("the replay of schedule {} did not reproduce the recorded failure:\n{}\n",
               recorded.schedule, recorded.failure);
    if (r.failure) printFailure(*r.failure);
    return kExitDiverged;
  }
  fmt::print("replay of schedule {}: reproduces the recorded failure\n", recorded.schedule);
  // Past its recording the replay preempts nobody: the recording is the
  // schedule.
  Failure f = *r.failure;
  f.schedule = recorded.schedule;
  f.choices = recorded.choices;
  printFailure(f);
  writeTrace(traceOut, sc, options, f);
  return kExitViolation;
}

}  // namespace

int runCheckCommand(CheckCommand cmd) {
  ReplayFile recorded;
  if (!cmd.replayIn.empty()) recorded = loadReplay(cmd);
  sim::Scenario sc = sim::loadScenario(cmd.scenario);
  if (!cmd.profile.empty()) sc.profile = cmd.profile;
  CheckOptions options = checkOptionsOf(cmd, recorded.choices);
  const auto out = cmd.replayOut.empty()
                       ? nullptr
                       : std::make_unique<report::OutputFile>(cmd.replayOut, "replay");
  const auto traceOut = cmd.tracePath.empty()
                            ? nullptr
                            : std::make_unique<report::OutputFile>(cmd.tracePath, "trace");
  // A deadlocked schedule leaves the model's threads blocked for good:
  // report it, write its replay and end the process from here.
  options.onStuck = [&cmd, &out](const Failure& f) {
    printFailure(f);
    writeReplay(out.get(), cmd, f);
    std::fflush(stdout);
    std::_Exit(kExitViolation);
  };
  report::ProgressBar bar(stderr, report::ProgressBar::isTerminal(stderr));
  options.onProgress = [&bar, &options](uint64_t done) {
    bar.update(static_cast<double>(done) / static_cast<double>(options.schedules),
               fmt::format("schedule {} of {}", done, options.schedules));
  };

  const auto start = std::chrono::steady_clock::now();
  const CheckResult r = runCheck(sc, options);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bar.finish();
  printFigures(cmd, options, r, secs);
  if (!r.divergence.empty()) {
    fmt::print("{}\n", r.divergence);
    return kExitDiverged;
  }
  if (!cmd.replayIn.empty()) return endReplay(sc, options, recorded, r, traceOut.get());
  if (!r.failure) {
    fmt::print("no violation\n");
    return 0;
  }
  const Failure f = shrunk(sc, options, *r.failure);
  printFailure(f);
  writeReplay(out.get(), cmd, f);
  writeTrace(traceOut.get(), sc, options, f);
  return kExitViolation;
}

CheckSubcommand::CheckSubcommand(CLI::App& parent)
    : Subcommand(parent, "check",
                 "explore thread interleavings of a scenario deterministically, stop at the first "
                 "that breaks an invariant or lockdep, shrink it (docs/check.md). Exit 0 no "
                 "violation, 1 a violation, 2 bad input, 3 a replay that did not reproduce its "
                 "recording") {
  CLI::App& cmd = app();
  cmd.add_option("scenario", cmd_.scenario, "scenario YAML file (small: scenarios/check/)");
  cmd.add_option("--design", cmd_.design, "the design (`vfiomm designs` lists them)");
  cmd.add_option("--profile", cmd_.profile, "the mm profile (default: the scenario's)");
  cmd.add_option(
      "--mutate", cmd_.mutations,
      "turn on a seeded bug (repeatable; docs/check.md lists them, a wrong name lists them too)");
  cmd.add_option("--strategy", cmd_.strategy, "random, pct or dfs (default random)");
  cmd.add_option("--schedules", cmd_.schedules, "schedules to run at most (default 1000)");
  cmd.add_option("--seed", cmd_.seed, "the seed; same inputs, same schedules (default 1)");
  cmd.add_option("--depth", cmd_.depth, "pct's bug depth d: d-1 priority changes (default 3)");
  cmd.add_option("--preemptions", cmd_.preemptions, "dfs's preemption bound (default 2)");
  cmd.add_option("--jobs,-j", cmd_.jobs,
                 "schedules run at once, each on a kernel of its own (random, pct; default 1); "
                 "the result does not depend on it");
  cmd.add_option("--replay-out", cmd_.replayOut,
                 "write the failing schedule, shrunk, as JSON (the inputs and its choices)");
  cmd.add_option("--trace", cmd_.tracePath,
                 "write the failing schedule's Chrome trace (ui.perfetto.dev); the same schedule "
                 "gives the same bytes");
  auto* replay = cmd.add_option("--replay", cmd_.replayIn,
                                "run the schedule of a replay file (its inputs win)");
  cmd.get_option("scenario")->excludes(replay);
  cmd.get_option("--design")->excludes(replay);
}

int CheckSubcommand::run() {
  if (cmd_.replayIn.empty() && (cmd_.scenario.empty() || cmd_.design.empty()))
    throw sim::ScenarioError("check: give a scenario and --design, or --replay FILE");
  return runCheckCommand(cmd_);
}

}  // namespace vfiomm::tools
