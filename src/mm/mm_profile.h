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
  bool forkOpenBeforeCopy = true;                               // fork_open_before_copy
  MunmapSplitStyle munmapSplitStyle = MunmapSplitStyle::kV6_5;  // munmap_split_style
  FileThpPlacement fileThpPlacement = FileThpPlacement::kOff;   // file_thp_placement
  bool thpPlacementNeedsNullHint = false;                       // thp_placement_needs_null_hint
  bool thpSysfsGatesPfnmap = false;                             // thp_sysfs_gates_pfnmap
  G3Variant g3Variant = G3Variant::kG3_2;                       // g3_variant
  bool fdQwordAccess = true;                                    // fd_qword_access
  bool romQwordAccess = true;                                   // rom_qword_access
  bool vfioSetsAllowAnyUncached = true;                         // vfio_sets_allow_any_uncached
  VmFlagsWriteAssert vmFlagsWriteAssert = VmFlagsWriteAssert::kAlways;  // vm_flags_write_assert
  bool forkClearsVmPat = false;                                         // fork_clears_vm_pat
  // Faults first try the per-VMA lock (CONFIG_PER_VMA_LOCK; file VMAs since 6.7).
  bool perVmaLock = true;
  // The vfio device uapi (vfio-uapi.md §0); all arrived by 6.6.
  bool devinfoCopybackV2 = true;  // devinfo_copyback: v2 copies min(argsz, 24)
  bool atomicCompCap = true;      // atomic_comp_cap
  bool msixDynamic = true;        // msix_dynamic (x86 with per-device MSI domains)
  bool hotResetCdev = true;       // hot_reset_cdev
  // Not a kernel's switch: the seeded bug `vfiomm check --mutate
  // fork-copies-before-link` (DesignOptions::forkCopiesBeforeLink), set by
  // the kernel that runs it. dup_mmap() copies a file VMA's entries into
  // the child before it links the child's VMA into the file's i_mmap tree.
  // The rule it breaks: dup_mmap() links the child's VMA right after the
  // parent's (vma_interval_tree_insert_after()) before copy_page_range(),
  // so that unmap_mapping_range() walks the child after the parent and a
  // zap of the parent that follows the copy zaps the child too; linked
  // after the copy, a zap in between misses the child, which keeps the
  // BAR mapped with decode off.
  bool forkCopiesBeforeLink = false;
  // Not a kernel's switch: the seeded bug `gather-without-nested-flush`
  // (DesignOptions::gatherWithoutNestedFlush). tlb_finish_mmu() flushes
  // only what its own gather cleared, even when another gather of the mm
  // is pending. The rule it breaks: a gather that finds entries already
  // cleared by another (a munmap that has not flushed yet) must flush the
  // whole mm before it returns (mm_tlb_flush_nested()); without it a
  // device zap returns while a CPU still translates the range (issue 17,
  // finding 2).
  bool gatherWithoutNestedFlush = false;
  // Not a kernel's switch either: the seeded bug `fault-retry-reuses-vma`
  // (DesignOptions::faultRetryReusesVma). When the fault under the per-VMA
  // lock returns VM_FAULT_RETRY (the 4 KiB ->fault of a file VMA, or a huge
  // fault that fell back to it), the retry under mmap_lock goes on with
  // the VMA of the first attempt instead of looking it up again. The rule
  // it breaks: do_user_addr_fault() retries through lock_mm_and_find_vma(),
  // because the VMA lock was dropped with the retry and a munmap or mremap
  // may have removed or changed the VMA meanwhile; on the stale one the
  // fault maps a range that no VMA covers any more.
  bool faultRetryReusesVma = false;
  bool dmabufFeature = false;  // dmabuf_feature (6.19)
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
  // iommufd_map_file: IOMMU_IOAS_MAP_FILE exists (memfd, v6.13; dma-buf
  // fds from v6.19, dmabuf_feature). Before it the ioctl number is
  // unknown to iommufd: -ENOTTY.
  bool iommufdMapFile = true;
  // Overcommit and /proc (vfio-uapi.md §0, §9, §10).
  bool vmeLogBytes = true;                 // vme_log_bytes
  bool fixedMapSurvivesChargeFail = true;  // fixed_map_survives_charge_fail
  bool anonInodeNoexec = false;            // anon_inode_noexec
  bool vmPatOnFill = true;                 // vm_pat_on_fill

  // linux-6.1, linux-6.9, linux-6.10, linux-6.12.0, linux-6.12, linux-6.15, linux-6.19.
  static std::optional<MmProfile> byName(std::string_view name);
  static std::vector<std::string> names();
};

// The THP sysfs "enabled" setting (/sys/kernel/mm/transparent_hugepage/enabled).
enum class ThpEnabled { kAlways, kMadvise, kNever };

}  // namespace vfiomm
