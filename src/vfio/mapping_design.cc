#include "vfio/mapping_design.h"

#include "mm/vma.h"
#include "vfio/designs.h"

namespace vfiomm {

void MappingDesign::setupVma(Vma& vma) const { vma.setOps(this); }

std::unique_ptr<MappingDesign> makeDesign(DesignKind kind, VfioPciCoreDevice& vdev,
                                          const DesignOptions& options) {
  switch (kind) {
    case DesignKind::kVmaList: return std::make_unique<VmaListDesign>(vdev, options);
    case DesignKind::kAddressSpace:
      return std::make_unique<AddressSpaceDesign>(vdev, options);
    case DesignKind::kFillVma: return std::make_unique<FillVmaDesign>(vdev);
    case DesignKind::kHugeFault: return std::make_unique<HugeFaultDesign>(vdev);
    case DesignKind::kPrefault: return std::make_unique<PrefaultDesign>(vdev, options);
  }
  return nullptr;
}

}  // namespace vfiomm
