// What `vfiomm sweep` writes (docs/sweep.md): the JSON, the CSV, the
// summary table and the HTML report of a sweep's rows.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/sweep.h"

namespace vfiomm::report {

inline constexpr int kSweepSchemaVersion = 1;

nlohmann::ordered_json sweepToJson(const sim::SweepOptions& options,
                                   const std::vector<sim::SweepRow>& rows);
std::string sweepToCsv(const std::vector<sim::SweepRow>& rows);
// Per design × alignment: the first touch's faults and modelled time at up
// to five of the swept sizes; sampled cells are marked.
std::string sweepSummary(const sim::SweepOptions& options, const std::vector<sim::SweepRow>& rows);
// A self-contained HTML page: per alignment, log–log charts of the first
// touch's faults and modelled time against BAR size, a line per design;
// the summary table; which points were sampled.
std::string sweepReportHtml(const sim::SweepOptions& options,
                            const std::vector<sim::SweepRow>& rows);

}  // namespace vfiomm::report
