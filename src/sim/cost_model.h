// CostModel: modelled nanoseconds per event the model counts, so a design's
// work becomes one comparable number. The defaults and where each comes
// from are in docs/cost-model.md; a scenario may override any of them
// (`cost_model:` in its YAML).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vfiomm::sim {

// Event counts of a run or a phase that the cost model prices.
struct CostInputs {
  uint64_t faults = 0;  // vmstat.pgfault: fault entry + exit each
  uint64_t pteInserts = 0;
  uint64_t pmdInserts = 0;
  uint64_t pudInserts = 0;
  uint64_t tlbMisses = 0;  // each a page walk
  uint64_t zappedEntries = 0;
  uint64_t zapCalls = 0;
  uint64_t shootdowns = 0;    // IPIs
  uint64_t lockHandoffs = 0;  // memory_lock write acquisitions
  // The DMA map (dma-mapping.md §7's cost hooks); its faults are in
  // `faults` and its inserts in the *Inserts above.
  uint64_t dmaLookups = 0;  // type1 vaddr_get_pfns() calls
  uint64_t iommuMaps = 0;   // iommu_map() calls
  uint64_t ioptes = 0;      // IOPTEs installed, any size
  uint64_t iovaToPhys = 0;  // iommu_iova_to_phys() calls (type1's unmap walk)
};

struct CostModel {
  double faultEntryExitNs = 1000;
  double pteInsertNs = 60;
  double pmdInsertNs = 120;
  double pudInsertNs = 150;
  double pageWalkNs = 30;
  double zapPerEntryNs = 15;
  double zapCallNs = 300;
  double shootdownIpiNs = 2000;
  double lockHandoffNs = 500;
  double vaddrGetPfnsNs = 120;
  double iommuMapCallNs = 1000;
  double iopteNs = 50;
  double iovaToPhysNs = 30;

  double modeledNs(const CostInputs& in) const;
  // The share of modeledNs that the DMA map's own steps cost (lookups,
  // iommu_map calls, IOPTEs, unmap walk): its faults are priced as faults.
  double dmaNs(const CostInputs& in) const;

  // The YAML/JSON keys, in order, with a pointer to each field.
  struct Field {
    const char* key;
    double CostModel::*member;
  };
  static const std::vector<Field>& fields();
};

}  // namespace vfiomm::sim
