// What `vfiomm compare` and `run` print: a terminal table (one column per
// design, rows per phase and total) and the JSON document of
// docs/json-schema.md.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/runner.h"
#include "sim/scenario.h"

namespace vfiomm::report {

inline constexpr int kJsonSchemaVersion = 2;

// A JSON document as text, `indent` as nlohmann's dump. Never throws on a
// string that is not UTF-8 (a file name, say): such bytes become U+FFFD.
std::string jsonText(const nlohmann::ordered_json& j, int indent = -1);

// The scenario with every default filled in.
nlohmann::ordered_json scenarioToJson(const sim::Scenario& sc);
nlohmann::ordered_json metricsToJson(const sim::Metrics& m);
// One design's result, as the JSON's "designs" holds it.
nlohmann::ordered_json designResultToJson(const sim::DesignResult& r);
nlohmann::ordered_json resultsToJson(const sim::Scenario& sc,
                                     const std::vector<sim::DesignResult>& results);

// The rows of the comparison table: a label and how to print a cell. The
// terminal table and the HTML report show the same rows.
struct MetricRow {
  const char* label;
  std::function<std::string(const sim::Metrics&)> cell;
};
const std::vector<MetricRow>& metricRows();

std::string formatTable(const sim::Scenario& sc, const std::vector<sim::DesignResult>& results);

}  // namespace vfiomm::report
