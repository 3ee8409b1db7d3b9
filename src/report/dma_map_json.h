// The "dma_map" object of the sweep and explain JSON documents
// (docs/sweep.md, docs/explain.md): a DmaMapEstimate.
#pragma once

#include <nlohmann/json.hpp>

#include "sim/dma_map_estimate.h"

namespace vfiomm::report {

nlohmann::ordered_json dmaMapToJson(const sim::DmaMapEstimate& d);

}  // namespace vfiomm::report
