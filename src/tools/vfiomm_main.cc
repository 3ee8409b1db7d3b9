// The vfiomm command line: `compare` (the default), `run`, `validate`,
// `designs`, `sweep` (docs/sweep.md) and `explain` (docs/explain.md).
//
// Exit status: 0 on success; 1 when a design that should keep every
// invariant broke one (vma-list's known holes are reported, not failures);
// 2 on bad input (a command line CLI11 refuses, a scenario file, an unknown
// design, a scenario whose devices the kernel refuses — also when that
// happens on a design's thread) and on an output file that cannot be
// written; 3 on an internal error (an exception nobody expected: a bug);
// 128 + N when signal N (SIGINT, SIGTERM, SIGHUP) stopped it, having left
// every output file as it was before.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "check/check_command.h"
#include "mm/mm_profile.h"
#include "pci/device_catalog.h"
#include "sim/explain.h"
#include "sim/html_report.h"
#include "sim/interrupt.h"
#include "sim/output_file.h"
#include "sim/progress_bar.h"
#include "sim/report.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "sim/sweep.h"
#include "sim/trace_files.h"
#include "sim/work_pool.h"
#include "trace/tracer.h"
#include "vfio/mapping_design.h"

namespace {

constexpr const char* kVersion = "vfiomm 0.1.0";
constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitInternal = 3;

void printDesigns() {
  for (vfiomm::DesignKind d : vfiomm::allDesigns())
    fmt::print("  {:<14} {:<11} {}\n", vfiomm::designName(d), vfiomm::defaultProfile(d),
               vfiomm::designSummary(d));
}

// --trace, --ftrace and --trace-limit (docs/trace.md).
void addTraceOptions(CLI::App* cmd, vfiomm::sim::RunOptions& options, size_t& limit) {
  cmd->add_option("--trace", options.traceChromePath,
                  "also write a Chrome trace-event JSON (open in ui.perfetto.dev)");
  cmd->add_option("--ftrace", options.traceFtracePath,
                  "also write the trace as `trace-cmd report` text");
  cmd->add_option("--trace-limit", limit,
                  "events a trace keeps per design, the latest (default 1000000)")
      ->check(CLI::Validator(
          [](const std::string& v) {
            return v.find_first_not_of("0123456789") == std::string::npos &&
                           v.find_first_not_of('0') != std::string::npos
                       ? std::string()
                       : "a trace keeps at least 1 event: give a positive whole number, not '" + v +
                             "'";
          },
          "N >= 1"));
}

vfiomm::sim::Scenario load(const std::string& path) {
  return path.empty() ? vfiomm::sim::defaultScenario() : vfiomm::sim::loadScenario(path);
}

std::vector<vfiomm::DesignKind> parseDesigns(const std::vector<std::string>& names) {
  std::vector<vfiomm::DesignKind> out;
  if (names.empty()) return vfiomm::allDesigns();
  for (const std::string& n : names) {
    auto d = vfiomm::designByName(n);
    if (!d) {
      std::string known;
      for (vfiomm::DesignKind k : vfiomm::allDesigns())
        known += fmt::format("{}{}", known.empty() ? "" : ", ", vfiomm::designName(k));
      throw vfiomm::sim::ScenarioError(fmt::format("unknown design '{}' (known: {})", n, known));
    }
    out.push_back(*d);
  }
  return out;
}

// Each design runs its own kernel on a thread of its own, up to `jobs` at
// once (sim/work_pool.h); the designs' threads say how far they have got,
// and this thread draws the progress bar from that.
// `--profiles a,b`: every design under each of those kernel profiles (the
// scenario's `profile:` replaced), profile by profile; none: each design
// under the scenario's profile or its own.
struct DesignRun {
  vfiomm::sim::Scenario scenario;
  vfiomm::DesignKind design;
};

std::vector<DesignRun> designRuns(const vfiomm::sim::Scenario& sc,
                                  const std::vector<vfiomm::DesignKind>& designs,
                                  const std::vector<std::string>& profiles,
                                  const std::vector<std::string>& paths) {
  std::vector<vfiomm::sim::DmaPath> dmaPaths;
  for (const std::string& p : paths) {
    const auto path = vfiomm::sim::dmaPathByName(p);
    if (!path)
      throw vfiomm::sim::ScenarioError(
          fmt::format("unknown DMA path '{}' (known: vaddr, dma-buf)", p));
    dmaPaths.push_back(*path);
  }
  if (dmaPaths.empty()) dmaPaths.push_back(sc.dmaPath);
  std::vector<DesignRun> runs;
  for (const vfiomm::sim::DmaPath path : dmaPaths)
    for (const std::string& profile :
         profiles.empty() ? std::vector<std::string>{sc.profile} : profiles) {
      if (!profile.empty() && !vfiomm::MmProfile::byName(profile)) {
        std::string known;
        for (const std::string& k : vfiomm::MmProfile::names())
          known += fmt::format("{}{}", known.empty() ? "" : ", ", k);
        throw vfiomm::sim::ScenarioError(
            fmt::format("unknown profile '{}' (known: {})", profile, known));
      }
      for (vfiomm::DesignKind d : designs) {
        runs.push_back(DesignRun{sc, d});
        runs.back().scenario.profile = profile;
        runs.back().scenario.dmaPath = path;
      }
    }
  return runs;
}

std::vector<vfiomm::sim::DesignResult> runDesigns(const std::vector<DesignRun>& runs, unsigned jobs,
                                                  const vfiomm::sim::RunOptions& options) {
  vfiomm::sim::ProgressBar bar(stderr, true);
  std::vector<vfiomm::sim::DesignResult> results(runs.size());
  std::vector<std::atomic<double>> done(runs.size());
  vfiomm::sim::runConcurrently(
      runs.size(), jobs,
      [&](size_t i) {
        vfiomm::sim::RunOptions o = options;
        o.onProgress = [&done, i](double f, const std::string&) { done[i].store(f); };
        results[i] = vfiomm::sim::runScenario(runs[i].scenario, runs[i].design, o);
        done[i].store(1);
      },
      {},
      [&] {
        double sum = 0;
        size_t finished = 0;
        for (const std::atomic<double>& d : done) {
          sum += d.load();
          finished += d.load() >= 1 ? 1U : 0U;
        }
        bar.update(sum / static_cast<double>(runs.size()),
                   fmt::format("{} of {} designs done", finished, runs.size()));
      });
  return results;
}

std::unique_ptr<vfiomm::sim::OutputFile> openOutput(const std::string& path, const char* what) {
  return path.empty() ? nullptr : std::make_unique<vfiomm::sim::OutputFile>(path, what);
}

int runAndReport(const vfiomm::sim::Scenario& sc, const std::vector<vfiomm::DesignKind>& designs,
                 const std::vector<std::string>& profiles, const std::vector<std::string>& dmaPaths,
                 const std::string& jsonPath, const std::string& reportPath, unsigned jobs,
                 const vfiomm::sim::RunOptions& options) {
  // Opened before the run, so that a bad path fails at once rather than
  // after minutes of simulation; each appears whole when committed.
  const auto json = openOutput(jsonPath, "JSON");
  const auto report = openOutput(reportPath, "report");
  const auto trace = openOutput(options.traceChromePath, "trace");
  const auto ftrace = openOutput(options.traceFtracePath, "ftrace");
  const std::vector<vfiomm::sim::DesignResult> results =
      runDesigns(designRuns(sc, designs, profiles, dmaPaths), jobs, options);
  vfiomm::sim::writeTraceFiles(results, trace.get(), ftrace.get());
  fmt::print("{}", vfiomm::sim::formatTable(sc, results));
  if (json) {
    json->stream() << vfiomm::sim::jsonText(vfiomm::sim::resultsToJson(sc, results), 2) << "\n";
    json->commit();
  }
  if (report) {
    report->stream() << vfiomm::sim::renderHtmlPage(fmt::format("vfiomm: {}", sc.name),
                                                    vfiomm::sim::comparisonSections(sc, results));
    report->commit();
  }
  for (const auto& r : results)
    if (r.failed) return kExitFailed;
  return 0;
}

// What stdout held must have reached it (`vfiomm compare > /dev/full`).
int flushStdout(int status) {
  if (std::fflush(stdout) == 0 && std::ferror(stdout) == 0) return status;
  std::fprintf(stderr, "vfiomm: writing the standard output failed: %s\n", std::strerror(errno));
  return status == 0 ? kExitBadInput : status;
}

int cliMain(int argc, char** argv) {
  CLI::App app{"vfiomm: an executable model of vfio-pci BAR mappings"};
  app.set_version_flag("--version", kVersion);

  auto* designs = app.add_subcommand("designs", "list the designs the model compares");
  auto* devices = app.add_subcommand(
      "devices", "list the device catalog: ids, BARs, capabilities (docs/devices.md)");
  std::string devicesDir;
  for (CLI::App* cmd : {&app, devices})
    cmd->add_option("--devices-dir", devicesDir,
                    "the device catalog (default: devices/ of the source tree)");
  vfiomm::sim::RunOptions options;
  bool printLockdep = false;

  std::string compareScenario;
  std::vector<std::string> compareDesigns;
  std::string compareJson;
  auto* compare =
      app.add_subcommand("compare", "run a scenario against several designs (the default command)");
  compare->add_option("scenario", compareScenario,
                      "scenario YAML file (default: the built-in gpu-passthrough)");
  compare->add_option("--designs", compareDesigns, "designs to compare (default: all)")
      ->delimiter(',');
  std::vector<std::string> compareProfiles;
  compare
      ->add_option("--profiles", compareProfiles,
                   "run every design under each of these kernel profiles (default: the scenario's, "
                   "else each "
                   "design's own)")
      ->delimiter(',');
  std::vector<std::string> compareDmaPaths;
  compare
      ->add_option("--dma-paths", compareDmaPaths,
                   "vaddr (type1 MAP_DMA of the BAR mapping), dma-buf (6.19+: vfio dma-buf + "
                   "IOMMU_IOAS_MAP_FILE); "
                   "run every design on each (default: the scenario's dma_path)")
      ->delimiter(',');
  compare->add_option("--json", compareJson,
                      "also write the results as JSON (docs/json-schema.md)");
  size_t traceLimit = vfiomm::trace::Tracer::kDefaultLimit;
  addTraceOptions(compare, options, traceLimit);
  std::string compareReport;
  compare->add_option("--report", compareReport,
                      "also write a self-contained HTML report with charts (docs/report.md)");
  unsigned jobs = std::max(1U, std::thread::hardware_concurrency());
  compare->add_option("--jobs,-j", jobs,
                      "designs run at once, each on a thread of its own (default: the CPUs)");

  std::string runScenarioPath;
  std::string runDesign;
  std::string runJson;
  compare->add_flag("--lockdep-splats", printLockdep, "print every lockdep report to stderr");
  auto* run = app.add_subcommand("run", "run a scenario against one design");
  run->add_flag("--lockdep-splats", printLockdep, "print every lockdep report to stderr");
  run->add_option("scenario", runScenarioPath, "scenario YAML file")->required();
  run->add_option("--design", runDesign, "the design")->required();
  run->add_option("--json", runJson, "also write the results as JSON (docs/json-schema.md)");
  addTraceOptions(run, options, traceLimit);
  std::string runReport;
  run->add_option("--report", runReport,
                  "also write a self-contained HTML report with charts (docs/report.md)");

  vfiomm::sim::SweepCommand sweepCmd;
  std::string sweepSizes;
  std::vector<std::string> sweepAlignments;
  std::vector<std::string> sweepDesigns;
  std::string sweepSampleAbove;
  unsigned sweepJobs = std::max(1U, std::thread::hardware_concurrency());
  auto* sweep = app.add_subcommand(
      "sweep", "BAR sizes x alignments x designs: touch, decode toggle, retouch (docs/sweep.md)");
  sweep->add_option("--sizes", sweepSizes,
                    "BAR sizes: 64K-1G (powers of two in between) or 64K,2M,1G (default 64K-128G)");
  sweep->add_option("--alignments", sweepAlignments, "4K,2M,1G,natural (default: all)")
      ->delimiter(',');
  sweep->add_option("--designs", sweepDesigns, "designs (default: all)")->delimiter(',');
  sweep->add_option("--jobs,-j", sweepJobs,
                    "points run at once, each on a thread of its own (default: the CPUs)");
  sweep->add_option("--sample-above", sweepSampleAbove,
                    "mappings longer than this are sampled (default 4G)");
  sweep->add_option("--csv", sweepCmd.csvPath, "write every point and phase as CSV");
  sweep->add_option("--json", sweepCmd.jsonPath, "write the results as JSON (docs/sweep.md)");
  sweep->add_option("--report", sweepCmd.reportPath, "write an HTML report with log-log charts");

  std::string explainBarSize, explainOffset, explainLength, explainAddr, explainDesign, explainJson;
  auto* explainCmd = app.add_subcommand(
      "explain",
      "what one BAR mapping costs per design, and why huge pages are (not) used (docs/explain.md)");
  explainCmd->add_option("--bar-size", explainBarSize, "BAR size: 64K, 2M, 1G, 0x40000000, ...")
      ->required();
  explainCmd->add_option("--bar-offset", explainOffset,
                         "offset of the mapping into the BAR (default 0)");
  explainCmd->add_option("--length", explainLength,
                         "length of the mapping (default: the rest of the BAR)");
  explainCmd->add_option("--addr", explainAddr,
                         "MAP_FIXED address (default: what mmap(NULL) picks)");
  explainCmd->add_option("--design", explainDesign, "one design (default: all)");
  explainCmd->add_option("--json", explainJson,
                         "write JSON to FILE, or '-' for stdout instead of the text");

  std::string validatePath;
  auto* validate = app.add_subcommand("validate", "check a scenario file without running it");
  validate->add_option("scenario", validatePath, "scenario YAML file")->required();

  vfiomm::check::CheckCommand checkCmd;
  auto* check = app.add_subcommand("check",
                                   "explore thread interleavings of a scenario deterministically, "
                                   "stop at the first that breaks an "
                                   "invariant or lockdep, shrink it (docs/check.md). Exit 0 no "
                                   "violation, 1 a violation, 2 bad input, "
                                   "3 a replay that did not reproduce its recording");
  check->add_option("scenario", checkCmd.scenario, "scenario YAML file (small: scenarios/check/)");
  check->add_option("--design", checkCmd.design, "the design (`vfiomm designs` lists them)");
  check->add_option("--profile", checkCmd.profile, "the mm profile (default: the scenario's)");
  check->add_option(
      "--mutate", checkCmd.mutations,
      "turn on a seeded bug (repeatable; docs/check.md lists them, a wrong name lists them too)");
  check->add_option("--strategy", checkCmd.strategy, "random, pct or dfs (default random)");
  check->add_option("--schedules", checkCmd.schedules, "schedules to run at most (default 1000)");
  check->add_option("--seed", checkCmd.seed, "the seed; same inputs, same schedules (default 1)");
  check->add_option("--depth", checkCmd.depth,
                    "pct's bug depth d: d-1 priority changes (default 3)");
  check->add_option("--preemptions", checkCmd.preemptions, "dfs's preemption bound (default 2)");
  check->add_option("--jobs,-j", checkCmd.jobs,
                    "schedules run at once, each on a kernel of its own (random, pct; default 1); "
                    "the result does not depend on it");
  check->add_option("--replay-out", checkCmd.replayOut,
                    "write the failing schedule, shrunk, as JSON (the inputs and its choices)");
  check->add_option(
      "--trace", checkCmd.tracePath,
      "write the failing schedule's Chrome trace (ui.perfetto.dev); the same schedule "
      "gives the same bytes");
  auto* replayOpt = check->add_option("--replay", checkCmd.replayIn,
                                      "run the schedule of a replay file (its inputs win)");
  check->get_option("scenario")->excludes(replayOpt);
  check->get_option("--design")->excludes(replayOpt);

  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with status 0; every other one is
    // a bad command line, exit status 2 like all bad input (not CLI11's own
    // codes), with CLI11's message.
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitBadInput;
  }
  vfiomm::sim::installInterruptHandlers();

  options.quietLockdep = !printLockdep;
  const bool traced = !options.traceChromePath.empty() || !options.traceFtracePath.empty();
  options.traceLimit = traced ? traceLimit : 0;
  try {
    if (designs->parsed()) {
      printDesigns();
      return 0;
    }
    if (!devicesDir.empty()) vfiomm::setDevicesDir(devicesDir);
    if (devices->parsed()) {
      fmt::print("{}", vfiomm::listCatalog(vfiomm::devicesDir()));
      return 0;
    }
    if (sweep->parsed()) {
      sweepCmd.options = vfiomm::sim::defaultSweepOptions();
      if (!sweepSizes.empty()) sweepCmd.options.sizes = vfiomm::sim::parseSizeList(sweepSizes);
      sweepCmd.options.alignments = vfiomm::sim::parseAlignmentList(sweepAlignments);
      sweepCmd.options.designs = parseDesigns(sweepDesigns);
      sweepCmd.options.jobs = sweepJobs;
      if (!sweepSampleAbove.empty()) {
        const auto v = vfiomm::sim::parseSize(sweepSampleAbove);
        if (!v)
          throw vfiomm::sim::ScenarioError(
              fmt::format("bad --sample-above '{}'", sweepSampleAbove));
        sweepCmd.options.sampleAbove = *v;
      }
      return vfiomm::sim::runSweepCommand(sweepCmd);
    }
    if (explainCmd->parsed()) {
      auto size = [](const std::string& opt, const std::string& text) {
        const auto v = vfiomm::sim::parseSize(text);
        if (!v)
          throw vfiomm::sim::ScenarioError(fmt::format(
              "{} '{}': expected a number (4096, 0x1000) with an optional K/M/G/T suffix", opt,
              text));
        return *v;
      };
      vfiomm::sim::ExplainRequest req;
      req.barSize = size("--bar-size", explainBarSize);
      if (!explainOffset.empty()) req.offset = size("--bar-offset", explainOffset);
      if (!explainLength.empty()) req.length = size("--length", explainLength);
      if (!explainAddr.empty()) req.address = size("--addr", explainAddr);
      if (!explainDesign.empty()) req.designs = parseDesigns({explainDesign});
      req.jobs = jobs;
      return vfiomm::sim::runExplainCommand(req, explainJson);
    }
    if (validate->parsed()) {
      const auto sc = vfiomm::sim::loadScenario(validatePath);
      fmt::print("{}: ok ({} devices, {} processes, {} phases)\n", validatePath, sc.devices.size(),
                 sc.processes.size(), sc.phases.size());
      return 0;
    }
    if (check->parsed()) {
      if (checkCmd.replayIn.empty() && (checkCmd.scenario.empty() || checkCmd.design.empty()))
        throw vfiomm::sim::ScenarioError("check: give a scenario and --design, or --replay FILE");
      return vfiomm::check::runCheckCommand(checkCmd);
    }
    if (run->parsed())
      return runAndReport(load(runScenarioPath), parseDesigns({runDesign}), {}, {}, runJson,
                          runReport, 1, options);
    // `compare`, or no command at all.
    return runAndReport(load(compareScenario), parseDesigns(compareDesigns), compareProfiles,
                        compareDmaPaths, compareJson, compareReport, jobs, options);
  } catch (const vfiomm::sim::ScenarioError& e) {
    fmt::print(stderr, "{}\n", e.what());
    return kExitBadInput;
  } catch (const vfiomm::sim::OutputError& e) {
    fmt::print(stderr, "{}\n", e.what());
    return kExitBadInput;
  } catch (const vfiomm::CatalogError& e) {
    fmt::print(stderr, "{}\n", e.what());
    return kExitBadInput;
  }
}

}  // namespace

// Anything else thrown is a bug of vfiomm, never "an invariant broke" (1).
int main(int argc, char** argv) {
  try {
    return flushStdout(cliMain(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vfiomm: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "vfiomm: internal error: an exception that is not a std::exception\n");
  }
  return kExitInternal;
}
