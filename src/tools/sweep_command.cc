#include "tools/sweep_command.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "base/byte_format.h"
#include "report/report.h"
#include "report/sweep_report.h"
#include "sim/sweep.h"
#include "tools/cli_options.h"

namespace vfiomm::tools {

SweepCommand::SweepCommand(CLI::App& parent)
    : Subcommand(parent, "sweep",
                 "BAR sizes x alignments x designs: touch, decode toggle, retouch (docs/sweep.md)"),
      jobs_(defaultJobs()) {
  CLI::App& cmd = app();
  cmd.add_option("--sizes", sizes_,
                 "BAR sizes: 64K-1G (powers of two in between) or 64K,2M,1G (default 64K-128G)");
  cmd.add_option("--alignments", alignments_, "4K,2M,1G,natural (default: all)")->delimiter(',');
  cmd.add_option("--designs", designs_, "designs (default: all)")->delimiter(',');
  cmd.add_option("--jobs,-j", jobs_,
                 "points run at once, each on a thread of its own (default: the CPUs)");
  cmd.add_option("--sample-above", sampleAbove_,
                 "mappings longer than this are sampled (default 4G)");
  cmd.add_option("--csv", csvPath_, "write every point and phase as CSV");
  cmd.add_option("--json", jsonPath_, "write the results as JSON (docs/sweep.md)");
  cmd.add_option("--report", reportPath_, "write an HTML report with log-log charts");
}

int SweepCommand::run() {
  sim::SweepOptions options = sim::defaultSweepOptions();
  if (!sizes_.empty()) options.sizes = sim::parseSizeList(sizes_);
  options.alignments = sim::parseAlignmentList(alignments_);
  options.designs = parseDesigns(designs_);
  options.jobs = jobs_;
  if (!sampleAbove_.empty()) {
    const auto v = sim::parseSize(sampleAbove_);
    if (!v) throw sim::ScenarioError(fmt::format("bad --sample-above '{}'", sampleAbove_));
    options.sampleAbove = *v;
  }
  const auto csv = openOutput(csvPath_, "CSV");
  const auto json = openOutput(jsonPath_, "JSON");
  const auto html = openOutput(reportPath_, "report");
  const auto start = std::chrono::steady_clock::now();
  size_t done = 0;
  const std::vector<sim::SweepRow> rows = sim::runSweep(options, [&](const sim::SweepRow& r) {
    fmt::print(stderr, "\r[{}] {} {} {}        ", ++done, formatBytes(r.barSize), r.alignment,
               designName(r.design));
    std::fflush(stderr);
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(stderr, "\n");
  fmt::print("{}", report::sweepSummary(options, rows));
  fmt::print("{} points in {:.1f} s ({} at once)\n", rows.size(), seconds, options.jobs);
  if (csv) {
    csv->stream() << report::sweepToCsv(rows);
    csv->commit();
  }
  if (json) {
    json->stream() << report::jsonText(report::sweepToJson(options, rows), 2) << "\n";
    json->commit();
  }
  if (html) {
    html->stream() << report::sweepReportHtml(options, rows);
    html->commit();
  }
  return 0;
}

}  // namespace vfiomm::tools
