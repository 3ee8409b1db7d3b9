#include "sim/dma_map_estimate.h"

#include <algorithm>

namespace vfiomm::sim {

namespace {
constexpr uint64_t kOneGiB = uint64_t{1} << 30;
}  // namespace

DmaMapEstimate estimateDmaMap(const Metrics& touch, uint64_t barSize, uint64_t offset,
                              uint64_t length) {
  DmaMapEstimate d;
  d.faults = touch.faults;
  d.lookupsPer4K = length / 4096;
  d.lookupsPerLeaf = touch.pte + touch.pmd + touch.pud;
  // iommu_pgsize() at each step: the largest of 4K|2M|1G dividing the IOVA
  // (1 GiB aligned, so the physical address decides) and fitting.
  // The BAR's base is aligned to its size, so offset + done tells the
  // physical alignment.
  for (uint64_t done = 0; done < length;) {
    const uint64_t at = offset + done;
    const uint64_t align = at == 0 ? barSize : std::min(barSize, at & (~at + 1));
    const uint64_t left = length - done;
    uint64_t leaf = 4096;
    if (align >= kOneGiB && left >= kOneGiB)
      leaf = kOneGiB;
    else if (align >= (2ULL << 20) && left >= (2ULL << 20))
      leaf = 2ULL << 20;
    (leaf == kOneGiB ? d.iopte1g : leaf == 4096 ? d.iopte4k : d.iopte2m) += 1;
    done += leaf;
  }
  const CostModel c;
  const double fixed = static_cast<double>(touch.faults) * c.faultEntryExitNs +
                       static_cast<double>(touch.pte) * c.pteInsertNs +
                       static_cast<double>(touch.pmd) * c.pmdInsertNs +
                       static_cast<double>(touch.pud) * c.pudInsertNs + c.iommuMapCallNs +
                       static_cast<double>(d.iopte4k + d.iopte2m + d.iopte1g) * c.iopteNs;
  d.modeledNsPer4K = fixed + static_cast<double>(d.lookupsPer4K) * c.vaddrGetPfnsNs;
  d.modeledNsPerLeaf = fixed + static_cast<double>(d.lookupsPerLeaf) * c.vaddrGetPfnsNs;
  return d;
}

}  // namespace vfiomm::sim
