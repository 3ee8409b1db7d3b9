// DmaMapEstimate: what type1's VFIO_IOMMU_MAP_DMA of a whole BAR mapping
// costs, per kernel era, from what a full touch of the mapping measured —
// for `explain` and `sweep`, which run touches, not DMA maps
// (scenarios/dma-map-32g-bar.yaml runs the map itself).
#pragma once

#include <cstdint>

#include "sim/runner.h"

namespace vfiomm::sim {

// What VFIO_IOMMU_MAP_DMA of the whole (unpopulated) mapping costs, from the
// leaves the design's full touch installed (dma-mapping.md §2): the map
// walks the range in order and faults each leaf in as the touch did; until
// 6.14 type1 looks up every 4 KiB page, from 6.15 one lookup per leaf. The
// IOVA is taken 1 GiB aligned (IOPTEs then depend on the BAR offset only).
struct DmaMapEstimate {
  uint64_t faults = 0;
  uint64_t lookupsPer4K = 0;    // 6.1-6.14
  uint64_t lookupsPerLeaf = 0;  // 6.15+
  uint64_t iopte4k = 0, iopte2m = 0, iopte1g = 0;
  double modeledNsPer4K = 0;  // default cost model, faults included
  double modeledNsPerLeaf = 0;
};
DmaMapEstimate estimateDmaMap(const Metrics& touch, uint64_t barSize, uint64_t offset,
                              uint64_t length);

}  // namespace vfiomm::sim
