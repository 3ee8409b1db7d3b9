// Kernel profiles and their mm/vfio version switches (mm-pfnmap.md §14).
// A profile is a named set of switch values; any switch can be overridden.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfiomm {

enum class MunmapSplitStyle { kV6_1, kV6_5 };
enum class FileThpPlacement { kOff, kAnyLen, kPmdLen };
enum class G3Variant { kG3_0, kG3_1, kG3_2 };
enum class VmFlagsWriteAssert { kNone, kLockdep, kAlways };
// How type1 turns a vaddr inside a VM_PFNMAP VMA into a pfn (dma-mapping.md
// §0, eras P2-P4): follow_pte() sees 4 KiB PTEs only; follow_pfnmap_start()
// also PMD/PUD leaves; from 6.15 its addr_mask lets one lookup cover the leaf.
enum class Type1PfnLookup { kFollowPte, kFollowPfnmap, kFollowPfnmapLeafStride };

struct MmProfile {
  std::string name;
  bool forkOpenBeforeCopy = true;                              // fork_open_before_copy
  MunmapSplitStyle munmapSplitStyle = MunmapSplitStyle::kV6_5;  // munmap_split_style
  FileThpPlacement fileThpPlacement = FileThpPlacement::kOff;  // file_thp_placement
  bool thpPlacementNeedsNullHint = false;                      // thp_placement_needs_null_hint
  bool thpSysfsGatesPfnmap = false;                            // thp_sysfs_gates_pfnmap
  G3Variant g3Variant = G3Variant::kG3_2;                      // g3_variant
  bool fdQwordAccess = true;                                   // fd_qword_access
  bool romQwordAccess = true;                                  // rom_qword_access
  bool vfioSetsAllowAnyUncached = true;                        // vfio_sets_allow_any_uncached
  VmFlagsWriteAssert vmFlagsWriteAssert = VmFlagsWriteAssert::kAlways;  // vm_flags_write_assert
  bool forkClearsVmPat = false;                                // fork_clears_vm_pat
  // Faults first try the per-VMA lock (CONFIG_PER_VMA_LOCK; file VMAs since 6.7).
  bool perVmaLock = true;
  // The vfio device uapi (vfio-uapi.md §0); all arrived by 6.6.
  bool devinfoCopybackV2 = true;  // devinfo_copyback: v2 copies min(argsz, 24)
  bool atomicCompCap = true;      // atomic_comp_cap
  bool msixDynamic = true;        // msix_dynamic (x86 with per-device MSI domains)
  bool hotResetCdev = true;       // hot_reset_cdev
  bool dmabufFeature = false;     // dmabuf_feature (6.19)
  // The type1 IOMMU driver (dma-mapping.md §0).
  Type1PfnLookup type1PfnLookup = Type1PfnLookup::kFollowPfnmapLeafStride;  // type1_pfn_lookup
  // type1_overflow_errno: a wrapping IOVA/vaddr range is -EOVERFLOW, checked
  // before the lock (Alex Mastro's series, ≈6.18). No named profile is that
  // recent: override the switch to model it.
  bool type1OverflowErrno = false;
  // type1_resched: cond_resched() before every vaddr_get_pfns() refill of
  // the pin loop (b1779e4f209c, v6.17, §2.8); before it MAP_DMA of a BAR
  // has no scheduling point. No named profile is that recent: override it.
  bool type1Resched = false;
  // iommufd_compat_unmap_empty: the vfio compat UNMAP_DMA of a range with
  // nothing mapped is 0 with size 0, as in type1, instead of -ENOENT
  // (afb47765f923, ≈v6.18, backported to stables in Nov 2025, 6.6.y
  // among them). Off in every named profile: override it.
  bool iommufdCompatUnmapEmpty = false;
  // Overcommit and /proc (vfio-uapi.md §0, §9, §10).
  bool vmeLogBytes = true;                 // vme_log_bytes
  bool fixedMapSurvivesChargeFail = true;  // fixed_map_survives_charge_fail
  bool anonInodeNoexec = false;            // anon_inode_noexec
  bool vmPatOnFill = true;                 // vm_pat_on_fill

  // linux-6.1, linux-6.9, linux-6.10, linux-6.12.0, linux-6.12, linux-6.15.
  static std::optional<MmProfile> byName(std::string_view name);
  static std::vector<std::string> names();
};

// The THP sysfs "enabled" setting (/sys/kernel/mm/transparent_hugepage/enabled).
enum class ThpEnabled { kAlways, kMadvise, kNever };

}  // namespace vfiomm
