#include "vfio/mapping_design.h"

#include "mm/vma.h"
#include "vfio/designs.h"

namespace vfiomm {

MappingDesign::MappingDesign(DesignKind kind, std::unique_ptr<ZapTracking> tracking,
                             std::unique_ptr<RefillPolicy> refill,
                             std::unique_ptr<FaultPolicy> fault)
    : kind_(kind),
      tracking_(std::move(tracking)),
      refill_(std::move(refill)),
      fault_(std::move(fault)) {}

void MappingDesign::setupVma(Vma& vma) const {
  tracking_->setupVma(vma);
  vma.setOps(this);
}

// Each design as (zap tracking) x (refill) x (fault). The fault policy is
// made last: it is handed the policies it works with.
std::unique_ptr<MappingDesign> makeDesign(DesignKind kind, VfioPciCoreDevice& vdev,
                                          const DesignOptions& options) {
  auto addressSpace = [&] {
    return std::make_unique<AddressSpaceTracking>(
        vdev, options.zapBeforeMemoryLock,
        options.zapWithoutTlbShootdown ? ZapFlush::kSkipped : ZapFlush::kShootdown);
  };
  const InsertLock insertLock = options.insertWithoutPtl ? InsertLock::kSkipped : InsertLock::kPtl;
  auto design = [&](auto tracking, auto refill, auto fault) {
    return std::make_unique<MappingDesign>(kind, std::move(tracking), std::move(refill),
                                           std::move(fault));
  };
  switch (kind) {
    case DesignKind::kVmaList: {
      auto list = std::make_unique<VmaListTracking>(vdev, options.vmaListZapOnOpen);
      auto fault = std::make_unique<RemapVmaFault>(vdev, *list);
      return design(std::move(list), std::make_unique<NoRefill>(), std::move(fault));
    }
    case DesignKind::kAddressSpace: {
      auto none = std::make_unique<NoRefill>();
      auto fault = std::make_unique<PerPageFault>(vdev, *none, options.faultWithoutMemoryLock);
      return design(addressSpace(), std::move(none), std::move(fault));
    }
    case DesignKind::kFillVma:
      return design(addressSpace(), std::make_unique<NoRefill>(),
                    std::make_unique<FillVmaFault>(vdev));
    case DesignKind::kHugeFault: {
      auto none = std::make_unique<NoRefill>();
      auto fault = std::make_unique<HugeFault>(vdev, *none, insertLock);
      return design(addressSpace(), std::move(none), std::move(fault));
    }
    case DesignKind::kPrefault: {
      auto walk = std::make_unique<PrefaultWalk>(vdev, options.prefaultFillOnFirstFault,
                                                 options.prefaultNaiveUnderMemoryLock);
      auto fault = std::make_unique<HugeFault>(vdev, *walk, insertLock);
      return design(addressSpace(), std::move(walk), std::move(fault));
    }
  }
  return nullptr;
}

}  // namespace vfiomm
