// What `run` and `compare` share: the designs × kernel profiles × DMA paths
// to run a scenario on, each run on a kernel and a thread of its own
// (sim/work_pool.h) under one progress bar, and the table, JSON, HTML
// report and trace files of the results.
#pragma once

#include <string>
#include <vector>

#include "sim/runner.h"
#include "sim/scenario.h"
#include "vfio/mapping_design.h"

namespace vfiomm::tools {

struct DesignRunRequest {
  std::vector<DesignKind> designs;
  // `--profiles a,b`: every design under each of them (the scenario's
  // `profile:` replaced), profile by profile; empty: the scenario's, else
  // each design's own.
  std::vector<std::string> profiles;
  // `--dma-paths`: every design on each; empty: the scenario's dma_path.
  std::vector<std::string> dmaPaths;
  std::string jsonPath, reportPath;
  unsigned jobs = 1;
  sim::RunOptions options;
};

// Runs, prints the table, writes the files asked for (opened before the
// run). Returns kExitFailed when a design broke an invariant it must keep,
// else 0; throws ScenarioError or OutputError on bad input.
int runAndReport(const sim::Scenario& sc, const DesignRunRequest& req);

}  // namespace vfiomm::tools
