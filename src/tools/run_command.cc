#include "tools/run_command.h"

#include "tools/design_runs.h"

namespace vfiomm::tools {

RunCommand::RunCommand(CLI::App& parent)
    : Subcommand(parent, "run", "run a scenario against one design") {
  CLI::App& cmd = app();
  cmd.add_flag("--lockdep-splats", lockdepSplats_, "print every lockdep report to stderr");
  cmd.add_option("scenario", scenario_, "scenario YAML file")->required();
  cmd.add_option("--design", design_, "the design")->required();
  cmd.add_option("--json", json_, "also write the results as JSON (docs/json-schema.md)");
  trace_.add(cmd);
  cmd.add_option("--report", report_,
                 "also write a self-contained HTML report with charts (docs/report.md)");
}

int RunCommand::run() {
  DesignRunRequest req{parseDesigns({design_}), {}, {}, json_, report_, 1, {}};
  req.options.quietLockdep = !lockdepSplats_;
  trace_.applyTo(req.options);
  return runAndReport(loadScenarioOrDefault(scenario_), req);
}

}  // namespace vfiomm::tools
