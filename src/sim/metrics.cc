#include "sim/metrics.h"

#include <algorithm>

namespace vfiomm::sim {

const std::vector<MetricField>& metricFields() {
  using M = Metrics;
  static const std::vector<MetricField> kFields = {
      {"faults.minor", "faults", &M::faults},
      // Entries, not faults: a fill (vma-list, fill-vma, prefault) inserts many
      // in one fault, a refill some in none.
      {"inserted_entries.pte", "pte", &M::pte},
      {"inserted_entries.pmd", "pmd", &M::pmd},
      {"inserted_entries.pud", "pud", &M::pud},
      {"faults.fallback", "fallback", &M::fallback},
      {"signals.sigbus", "sigbus", &M::sigbus},
      {"signals.sigsegv", "sigsegv", &M::sigsegv},
      {"accesses", "accesses", &M::accesses},
      {"zaps", "zaps", &M::zaps},
      {"zapped_entries", "zapped_entries", &M::zappedEntries},
      {"tlb.misses", "tlb_misses", &M::tlbMisses},
      {"tlb.shootdowns", "shootdowns", &M::shootdowns},
      {"memory_lock_writes", "memory_lock_writes", &M::memoryLockWrites},
      {"pgtables_peak_bytes", "pgtables_peak_bytes", &M::pgtablesPeak, nullptr, true},
      {"lockdep_reports", "lockdep_reports", &M::lockdepReports},
      {"violations", "violations", &M::violations},
      {"dma_map.lookups", nullptr, &M::dmaLookups},
      {"dma_map.faults", nullptr, &M::dmaFaults},
      {"dma_map.iommu_map_calls", nullptr, &M::iommuMaps},
      {"dma_map.ioptes.4k", nullptr, &M::iopte4k},
      {"dma_map.ioptes.2m", nullptr, &M::iopte2m},
      {"dma_map.ioptes.1g", nullptr, &M::iopte1g},
      {"dma_map.iova_to_phys", nullptr, &M::iovaToPhys},
      {"device_dma.accesses", nullptr, &M::dmaAccesses},
      {"device_dma.dmar_faults", nullptr, &M::dmarFaults},
      {"device_dma.violations", nullptr, &M::dmaViolations},
      {"dma_map.modeled_ns", nullptr, nullptr, &M::dmaModeledNs},
      {"modeled_ns", "modeled_ns", nullptr, &M::modeledNs},
      {"wall_ns", "wall_ns", &M::wallNs},
  };
  return kFields;
}

void Metrics::add(const Metrics& o) {
  for (const MetricField& f : metricFields()) {
    if (f.ns != nullptr)
      this->*f.ns += o.*f.ns;
    else if (f.max)
      this->*f.count = std::max(this->*f.count, o.*f.count);
    else
      this->*f.count += o.*f.count;
  }
}

CostInputs Metrics::costInputs() const {
  CostInputs in;
  in.faults = faults;
  in.pteInserts = pte;
  in.pmdInserts = pmd;
  in.pudInserts = pud;
  in.tlbMisses = tlbMisses;
  in.zappedEntries = zappedEntries;
  in.zapCalls = zaps;
  in.shootdowns = shootdowns;
  in.lockHandoffs = memoryLockWrites;
  in.dmaLookups = dmaLookups;
  in.iommuMaps = iommuMaps;
  in.ioptes = iopte4k + iopte2m + iopte1g;
  in.iovaToPhys = iovaToPhys;
  return in;
}

}  // namespace vfiomm::sim
