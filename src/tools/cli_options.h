// What several subcommands share: reading a design list, the trace options,
// the scenario (or the built-in one), and output files opened before a run.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "report/output_file.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "vfio/mapping_design.h"

namespace vfiomm::tools {

// Every design when `names` is empty; throws ScenarioError naming the known
// ones for an unknown name.
std::vector<DesignKind> parseDesigns(const std::vector<std::string>& names);

// --trace, --ftrace and --trace-limit (docs/trace.md).
struct TraceOptions {
  std::string chromePath, ftracePath;
  size_t limit = 0;
  void add(CLI::App& cmd);
  // Into `options`: the paths, and the limit only when a trace is asked for.
  void applyTo(sim::RunOptions& options) const;
};

// The scenario at `path`, or the built-in default when it is empty.
sim::Scenario loadScenarioOrDefault(const std::string& path);

// An output file opened now, so that a bad path fails before minutes of
// simulation; null when `path` is empty.
std::unique_ptr<report::OutputFile> openOutput(const std::string& path, const char* what);

// The CPUs of this machine, at least 1: the default of --jobs.
unsigned defaultJobs();

}  // namespace vfiomm::tools
