#include "tools/compare_command.h"

#include "tools/design_runs.h"

namespace vfiomm::tools {

CompareCommand::CompareCommand(CLI::App& parent)
    : Subcommand(parent, "compare", "run a scenario against several designs (the default command)"),
      jobs_(defaultJobs()) {
  CLI::App& cmd = app();
  cmd.add_option("scenario", scenario_,
                 "scenario YAML file (default: the built-in gpu-passthrough)");
  cmd.add_option("--designs", designs_, "designs to compare (default: all)")->delimiter(',');
  cmd.add_option("--profiles", profiles_,
                 "run every design under each of these kernel profiles (default: the scenario's, "
                 "else each design's own)")
      ->delimiter(',');
  cmd.add_option("--dma-paths", dmaPaths_,
                 "vaddr (type1 MAP_DMA of the BAR mapping), dma-buf (6.19+: vfio dma-buf + "
                 "IOMMU_IOAS_MAP_FILE); run every design on each (default: the scenario's "
                 "dma_path)")
      ->delimiter(',');
  cmd.add_option("--json", json_, "also write the results as JSON (docs/json-schema.md)");
  trace_.add(cmd);
  cmd.add_option("--report", report_,
                 "also write a self-contained HTML report with charts (docs/report.md)");
  cmd.add_option("--jobs,-j", jobs_,
                 "designs run at once, each on a thread of its own (default: the CPUs)");
  cmd.add_flag("--lockdep-splats", lockdepSplats_, "print every lockdep report to stderr");
}

int CompareCommand::run() {
  DesignRunRequest req{parseDesigns(designs_), profiles_, dmaPaths_, json_, report_, jobs_, {}};
  req.options.quietLockdep = !lockdepSplats_;
  trace_.applyTo(req.options);
  return runAndReport(loadScenarioOrDefault(scenario_), req);
}

}  // namespace vfiomm::tools
