#include "report/dma_map_json.h"

namespace vfiomm::report {

nlohmann::ordered_json dmaMapToJson(const sim::DmaMapEstimate& d) {
  using Json = nlohmann::ordered_json;
  return Json{{"faults", d.faults},
              {"lookups_per_4k", d.lookupsPer4K},
              {"lookups_per_leaf", d.lookupsPerLeaf},
              {"ioptes", Json{{"4k", d.iopte4k}, {"2m", d.iopte2m}, {"1g", d.iopte1g}}},
              {"modeled_ns_per_4k", d.modeledNsPer4K},
              {"modeled_ns_per_leaf", d.modeledNsPerLeaf}};
}

}  // namespace vfiomm::report
