// What a phase of a run cost: the model's counters, signals, lockdep
// reports, invariant violations, modelled and wall time.
#pragma once

#include <cstdint>
#include <vector>

#include "sim/cost_model.h"

namespace vfiomm::sim {

struct Metrics {
  uint64_t faults = 0;  // vmstat.pgfault (minor faults)
  uint64_t pte = 0;     // mm.pfn_insert.pte
  uint64_t pmd = 0;
  uint64_t pud = 0;
  uint64_t fallback = 0;  // mm.fault.fallback.pud + .pmd
  uint64_t sigbus = 0;
  uint64_t sigsegv = 0;
  uint64_t accesses = 0;
  uint64_t zaps = 0;           // mm.zap.calls
  uint64_t zappedEntries = 0;  // mm.zap.pte + pmd + pud
  uint64_t tlbMisses = 0;
  uint64_t shootdowns = 0;
  uint64_t memoryLockWrites = 0;
  uint64_t pgtablesPeak = 0;  // bytes: the largest sum over processes seen so far
  uint64_t lockdepReports = 0;
  uint64_t violations = 0;  // invariant 1: accesses that reached a BAR with decode off
  // The DMA map (dma-mapping.md §2): type1's lookups and the faults it took,
  // the IOMMU's iommu_map() calls and the IOPTEs they installed by size,
  // and the unmap walk's iommu_iova_to_phys() calls.
  uint64_t dmaLookups = 0;  // vfio.type1.vaddr_get_pfns
  uint64_t dmaFaults = 0;   // vfio.type1.fixup_user_fault (also in `faults`)
  uint64_t iommuMaps = 0;   // iommu.map.calls
  uint64_t iopte4k = 0;     // iommu.iopte.map.4k
  uint64_t iopte2m = 0;
  uint64_t iopte1g = 0;
  uint64_t iovaToPhys = 0;  // iommu.iova_to_phys
  // Device DMA: accesses the IOMMU translated, those it blocked (DMAR
  // faults, -EIO to the device), and invariant 7: translated DMA that
  // reached a BAR with its decode off (the type1 hazard, §2.6).
  uint64_t dmaAccesses = 0;
  uint64_t dmarFaults = 0;
  uint64_t dmaViolations = 0;
  double modeledNs = 0;
  double dmaModeledNs = 0;  // the DMA map's share of modeledNs (CostModel::dmaNs)
  uint64_t wallNs = 0;

  // Phase after phase: every count adds up, but pgtablesPeak, the max.
  void add(const Metrics& o);
  CostInputs costInputs() const;
};

// Every field of Metrics, once: where the run's JSON puts it (nested at the
// dots, docs/json-schema.md), its flat key in the sweep and explain
// documents and the sweep's CSV (null: those leave it out), and how two
// phases combine. In the order of the flat documents' columns.
struct MetricField {
  const char* path;
  const char* flat;
  uint64_t Metrics::*count = nullptr;  // one of count and ns
  double Metrics::*ns = nullptr;
  bool max = false;  // combine by max instead of by sum
};
const std::vector<MetricField>& metricFields();

}  // namespace vfiomm::sim
