#include "sim/cost_model.h"

namespace vfiomm::sim {

namespace {
double d(uint64_t v) { return static_cast<double>(v); }
}  // namespace

double CostModel::modeledNs(const CostInputs& in) const {
  return d(in.faults) * faultEntryExitNs + d(in.pteInserts) * pteInsertNs +
         d(in.pmdInserts) * pmdInsertNs + d(in.pudInserts) * pudInsertNs +
         d(in.tlbMisses) * pageWalkNs + d(in.zappedEntries) * zapPerEntryNs +
         d(in.zapCalls) * zapCallNs + d(in.shootdowns) * shootdownIpiNs +
         d(in.lockHandoffs) * lockHandoffNs + dmaNs(in);
}

double CostModel::dmaNs(const CostInputs& in) const {
  return d(in.dmaLookups) * vaddrGetPfnsNs + d(in.iommuMaps) * iommuMapCallNs +
         d(in.ioptes) * iopteNs + d(in.iovaToPhys) * iovaToPhysNs;
}

const std::vector<CostModel::Field>& CostModel::fields() {
  static const std::vector<Field> kFields = {
      {"fault_entry_exit_ns", &CostModel::faultEntryExitNs},
      {"pte_insert_ns", &CostModel::pteInsertNs},
      {"pmd_insert_ns", &CostModel::pmdInsertNs},
      {"pud_insert_ns", &CostModel::pudInsertNs},
      {"page_walk_ns", &CostModel::pageWalkNs},
      {"zap_per_entry_ns", &CostModel::zapPerEntryNs},
      {"zap_call_ns", &CostModel::zapCallNs},
      {"shootdown_ipi_ns", &CostModel::shootdownIpiNs},
      {"lock_handoff_ns", &CostModel::lockHandoffNs},
      {"vaddr_get_pfns_ns", &CostModel::vaddrGetPfnsNs},
      {"iommu_map_call_ns", &CostModel::iommuMapCallNs},
      {"iopte_ns", &CostModel::iopteNs},
      {"iova_to_phys_ns", &CostModel::iovaToPhysNs},
  };
  return kFields;
}

}  // namespace vfiomm::sim
