#include "mm/mm_profile.h"

// vm_pat_on_fill stays on in every profile: remap_pfn_range() sets VM_PAT
// until the PAT rework (≈6.16), and only G1 calls it. anon_inode_noexec is
// off in every profile (6.16+, 6.15.y; not in linux-6.15 = mainline v6.15):
// override it for that era.

namespace vfiomm {

namespace {

MmProfile linux61() {
  MmProfile p;
  p.name = "linux-6.1";
  p.forkOpenBeforeCopy = true;
  p.munmapSplitStyle = MunmapSplitStyle::kV6_1;
  p.fileThpPlacement = FileThpPlacement::kOff;
  p.fdQwordAccess = false;
  p.romQwordAccess = false;
  p.vfioSetsAllowAnyUncached = false;
  p.vmFlagsWriteAssert = VmFlagsWriteAssert::kNone;
  p.forkClearsVmPat = true;
  p.perVmaLock = false;  // per-VMA locks arrived in 6.4 (anonymous) and 6.7 (file)
  p.devinfoCopybackV2 = false;
  p.atomicCompCap = false;
  p.msixDynamic = false;
  p.hotResetCdev = false;
  p.type1PfnLookup = Type1PfnLookup::kFollowPte;
  p.vmeLogBytes = false;
  p.fixedMapSurvivesChargeFail = false;
  p.iommufdMapFile = false;  // v6.13
  return p;
}

MmProfile linux69() {
  MmProfile p;
  p.name = "linux-6.9";
  p.vmeLogBytes = false;  // ≈6.10 (vfio-uapi.md §0, unverified)
  p.fixedMapSurvivesChargeFail = false;
  p.fileThpPlacement = FileThpPlacement::kOff;
  p.fdQwordAccess = false;
  p.romQwordAccess = false;
  p.vmFlagsWriteAssert = VmFlagsWriteAssert::kLockdep;
  p.type1PfnLookup = Type1PfnLookup::kFollowPte;
  p.iommufdMapFile = false;  // v6.13
  return p;
}

MmProfile linux610() {
  MmProfile p;
  p.name = "linux-6.10";
  p.fixedMapSurvivesChargeFail = false;  // believed 6.12 (unverified)
  p.fileThpPlacement = FileThpPlacement::kAnyLen;
  p.fdQwordAccess = false;
  p.romQwordAccess = false;
  p.type1PfnLookup = Type1PfnLookup::kFollowPte;
  p.iommufdMapFile = false;  // v6.13
  return p;
}

MmProfile linux6120() {
  MmProfile p;
  p.name = "linux-6.12.0";
  p.fileThpPlacement = FileThpPlacement::kPmdLen;
  p.thpSysfsGatesPfnmap = true;
  p.g3Variant = G3Variant::kG3_0;
  p.fdQwordAccess = false;
  p.romQwordAccess = false;
  // The vfio conversion to follow_pfnmap came with the huge pfnmap series
  // (6.12); the addr_mask stride (0fd06844de5d) only in 6.15.
  p.type1PfnLookup = Type1PfnLookup::kFollowPfnmap;
  p.iommufdMapFile = false;  // v6.13
  return p;
}

MmProfile linux612() {
  MmProfile p;
  p.name = "linux-6.12";
  p.fileThpPlacement = FileThpPlacement::kPmdLen;
  p.thpPlacementNeedsNullHint = true;
  p.romQwordAccess = false;
  p.type1PfnLookup = Type1PfnLookup::kFollowPfnmap;
  p.iommufdMapFile = false;  // v6.13
  return p;
}

MmProfile linux615() {
  MmProfile p;
  p.name = "linux-6.15";
  p.fileThpPlacement = FileThpPlacement::kOff;
  p.thpPlacementNeedsNullHint = true;
  p.thpSysfsGatesPfnmap = true;
  return p;
}

// v6.19: the vfio dma-buf export and iommufd's import of it
// (dma-mapping.md §0, §4), on top of the type1 changes merged since 6.15:
// the pin loop's cond_resched (b1779e4f209c, v6.17), the EOVERFLOW checks
// and the compat layer's empty unmap (both ≈v6.18, before the v6.19 pull's
// base). The mm switches after 6.15 that the model has: anon inodes are
// noexec and remap_pfn_range no longer sets VM_PAT (≈6.16, top of file).
MmProfile linux619() {
  MmProfile p = linux615();
  p.name = "linux-6.19";
  p.dmabufFeature = true;
  p.type1Resched = true;
  p.type1OverflowErrno = true;
  p.iommufdCompatUnmapEmpty = true;
  p.anonInodeNoexec = true;
  p.vmPatOnFill = false;
  return p;
}

}  // namespace

std::optional<MmProfile> MmProfile::byName(std::string_view name) {
  for (MmProfile (*make)() :
       {linux61, linux69, linux610, linux6120, linux612, linux615, linux619}) {
    MmProfile p = make();
    if (p.name == name) return p;
  }
  return std::nullopt;
}

std::vector<std::string> MmProfile::names() {
  return {"linux-6.1",  "linux-6.9",  "linux-6.10", "linux-6.12.0",
          "linux-6.12", "linux-6.15", "linux-6.19"};
}

}  // namespace vfiomm
