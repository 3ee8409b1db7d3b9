// What `vfiomm explain` prints and writes (docs/explain.md): the text and
// the JSON of an Explanation.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "sim/explain.h"

namespace vfiomm::report {

inline constexpr int kExplainSchemaVersion = 1;

nlohmann::ordered_json explanationToJson(const sim::Explanation& e);
std::string explanationText(const sim::Explanation& e);

}  // namespace vfiomm::report
