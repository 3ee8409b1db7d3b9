#include "tools/design_runs.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <atomic>

#include "kernel/kernel_profile.h"
#include "report/html_report.h"
#include "report/progress_bar.h"
#include "report/report.h"
#include "report/trace_files.h"
#include "sim/work_pool.h"
#include "tools/cli_options.h"
#include "tools/subcommand.h"

namespace vfiomm::tools {

namespace {

struct DesignRun {
  sim::Scenario scenario;
  DesignKind design;
};

std::vector<sim::DmaPath> dmaPathsOf(const sim::Scenario& sc,
                                     const std::vector<std::string>& names) {
  std::vector<sim::DmaPath> paths;
  for (const std::string& p : names) {
    const auto path = sim::dmaPathByName(p);
    if (!path)
      throw sim::ScenarioError(
          fmt::format("unknown DMA path '{}' (known: {})", p, nameList(sim::kDmaPathNames)));
    paths.push_back(*path);
  }
  if (paths.empty()) paths.push_back(sc.dmaPath);
  return paths;
}

void checkProfile(const std::string& profile) {
  if (profile.empty() || KernelProfile::byName(profile)) return;
  throw sim::ScenarioError(fmt::format("unknown profile '{}' (known: {})", profile,
                                       fmt::join(KernelProfile::names(), ", ")));
}

std::vector<DesignRun> designRuns(const sim::Scenario& sc, const DesignRunRequest& req) {
  std::vector<DesignRun> runs;
  for (const sim::DmaPath path : dmaPathsOf(sc, req.dmaPaths))
    for (const std::string& profile :
         req.profiles.empty() ? std::vector<std::string>{sc.profile} : req.profiles) {
      checkProfile(profile);
      for (DesignKind d : req.designs) {
        runs.push_back(DesignRun{sc, d});
        runs.back().scenario.profile = profile;
        runs.back().scenario.dmaPath = path;
      }
    }
  return runs;
}

// The designs' threads say how far they have got; this thread draws the
// progress bar from that.
std::vector<sim::DesignResult> runDesigns(const std::vector<DesignRun>& runs, unsigned jobs,
                                          const sim::RunOptions& options) {
  report::ProgressBar bar(stderr, true);
  std::vector<sim::DesignResult> results(runs.size());
  std::vector<std::atomic<double>> done(runs.size());
  sim::runConcurrently(
      runs.size(), jobs,
      [&](size_t i) {
        sim::RunOptions o = options;
        o.onProgress = [&done, i](double f, const std::string&) { done[i].store(f); };
        results[i] = sim::runScenario(runs[i].scenario, runs[i].design, o);
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

}  // namespace

int runAndReport(const sim::Scenario& sc, const DesignRunRequest& req) {
  const auto json = openOutput(req.jsonPath, "JSON");
  const auto html = openOutput(req.reportPath, "report");
  const auto trace = openOutput(req.options.traceChromePath, "trace");
  const auto ftrace = openOutput(req.options.traceFtracePath, "ftrace");
  const std::vector<sim::DesignResult> results =
      runDesigns(designRuns(sc, req), req.jobs, req.options);
  report::writeTraceFiles(results, trace.get(), ftrace.get());
  fmt::print("{}", report::formatTable(sc, results));
  if (json) {
    json->stream() << report::jsonText(report::resultsToJson(sc, results), 2) << "\n";
    json->commit();
  }
  if (html) {
    html->stream() << report::renderHtmlPage(fmt::format("vfiomm: {}", sc.name),
                                             report::comparisonSections(sc, results));
    html->commit();
  }
  for (const auto& r : results)
    if (r.failed) return kExitFailed;
  return 0;
}

}  // namespace vfiomm::tools
