#include "kernel/kernel_profile.h"

// vm_pat_on_fill stays on in every profile: remap_pfn_range() sets VM_PAT
// until the PAT rework (≈6.16), and only G1 calls it. anon_inode_noexec is
// off in every profile (6.16+, 6.15.y; not in linux-6.15 = mainline v6.15):
// override it for that era.

namespace vfiomm {

namespace {

KernelProfile linux61() {
  KernelProfile p;
  p.name = "linux-6.1";
  p.mm.forkOpenBeforeCopy = true;
  p.mm.munmapSplitStyle = MunmapSplitStyle::kV6_1;
  p.mm.fileThpPlacement = FileThpPlacement::kOff;
  p.vfio.fdQwordAccess = false;
  p.vfio.romQwordAccess = false;
  p.vfio.vfioSetsAllowAnyUncached = false;
  p.mm.vmFlagsWriteAssert = VmFlagsWriteAssert::kNone;
  p.mm.forkClearsVmPat = true;
  p.mm.perVmaLock = false;  // per-VMA locks arrived in 6.4 (anonymous) and 6.7 (file)
  p.vfio.devinfoCopybackV2 = false;
  p.vfio.atomicCompCap = false;
  p.vfio.msixDynamic = false;
  p.vfio.hotResetCdev = false;
  p.vfio.type1PfnLookup = Type1PfnLookup::kFollowPte;
  p.mm.vmeLogBytes = false;
  p.mm.fixedMapSurvivesChargeFail = false;
  p.mm.madviseRemoveMaywrite = false;
  p.iommufd.mapFile = false;  // v6.13
  return p;
}

KernelProfile linux69() {
  KernelProfile p;
  p.name = "linux-6.9";
  p.mm.vmeLogBytes = false;  // ≈6.10 (vfio-uapi.md §0, unverified)
  p.mm.fixedMapSurvivesChargeFail = false;
  p.mm.fileThpPlacement = FileThpPlacement::kOff;
  p.vfio.fdQwordAccess = false;
  p.vfio.romQwordAccess = false;
  p.mm.vmFlagsWriteAssert = VmFlagsWriteAssert::kLockdep;
  p.vfio.type1PfnLookup = Type1PfnLookup::kFollowPte;
  p.iommufd.mapFile = false;  // v6.13
  return p;
}

KernelProfile linux610() {
  KernelProfile p;
  p.name = "linux-6.10";
  p.mm.fixedMapSurvivesChargeFail = false;  // believed 6.12 (unverified)
  p.mm.fileThpPlacement = FileThpPlacement::kAnyLen;
  p.vfio.fdQwordAccess = false;
  p.vfio.romQwordAccess = false;
  p.vfio.type1PfnLookup = Type1PfnLookup::kFollowPte;
  p.iommufd.mapFile = false;  // v6.13
  return p;
}

KernelProfile linux6120() {
  KernelProfile p;
  p.name = "linux-6.12.0";
  p.mm.fileThpPlacement = FileThpPlacement::kPmdLen;
  p.mm.thpSysfsGatesPfnmap = true;
  p.vfio.g3Variant = G3Variant::kG3_0;
  p.vfio.fdQwordAccess = false;
  p.vfio.romQwordAccess = false;
  // The vfio conversion to follow_pfnmap came with the huge pfnmap series
  // (6.12); the addr_mask stride (0fd06844de5d) only in 6.15.
  p.vfio.type1PfnLookup = Type1PfnLookup::kFollowPfnmap;
  p.iommufd.mapFile = false;  // v6.13
  return p;
}

KernelProfile linux612() {
  KernelProfile p;
  p.name = "linux-6.12";
  p.mm.fileThpPlacement = FileThpPlacement::kPmdLen;
  p.mm.thpPlacementNeedsNullHint = true;
  p.vfio.romQwordAccess = false;
  p.vfio.type1PfnLookup = Type1PfnLookup::kFollowPfnmap;
  p.iommufd.mapFile = false;  // v6.13
  return p;
}

KernelProfile linux615() {
  KernelProfile p;
  p.name = "linux-6.15";
  p.mm.fileThpPlacement = FileThpPlacement::kOff;
  p.mm.thpPlacementNeedsNullHint = true;
  p.mm.thpSysfsGatesPfnmap = true;
  return p;
}

// v6.19: the vfio dma-buf export and iommufd's import of it
// (dma-mapping.md §0, §4), on top of the changes merged since 6.15: the
// type1 pin loop's cond_resched (b1779e4f209c, v6.17), iommufd's ->mmap
// (v6.17), the type1 EOVERFLOW checks and the compat layer's empty unmap
// (both ≈v6.18, before the v6.19 pull's base). The mm switches after 6.15
// that the model has: anon inodes are noexec and remap_pfn_range no longer
// sets VM_PAT (≈6.16, top of file), and MADV_DONTNEED/FREE under the VMA's
// read lock (≈6.17).
KernelProfile linux619() {
  KernelProfile p = linux615();
  p.name = "linux-6.19";
  p.vfio.dmabufFeature = true;
  p.vfio.type1Resched = true;
  p.vfio.type1OverflowErrno = true;
  p.iommufd.compatUnmapEmpty = true;
  p.iommufd.mmap = true;
  p.vfio.anonInodeNoexec = true;
  p.vfio.romQwordAccess = false;  // "Disable qword access to the PCI ROM bar"
  p.mm.vmPatOnFill = false;
  p.mm.madviseVmaReadLock = true;
  return p;
}

}  // namespace

std::optional<KernelProfile> KernelProfile::byName(std::string_view name) {
  for (KernelProfile (*make)() :
       {linux61, linux69, linux610, linux6120, linux612, linux615, linux619}) {
    KernelProfile p = make();
    if (p.name == name) return p;
  }
  return std::nullopt;
}

std::vector<std::string> KernelProfile::names() {
  return {"linux-6.1",  "linux-6.9",  "linux-6.10", "linux-6.12.0",
          "linux-6.12", "linux-6.15", "linux-6.19"};
}

}  // namespace vfiomm
