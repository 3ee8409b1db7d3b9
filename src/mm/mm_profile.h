// The mm half of a kernel profile (mm-pfnmap.md §14): the version switches
// mm/ reads. kernel/kernel_profile.h puts it together with the iommufd and
// vfio halves into the named profiles; any switch can be overridden.
#pragma once

namespace vfiomm {

enum class MunmapSplitStyle { kV6_1, kV6_5 };
enum class FileThpPlacement { kOff, kAnyLen, kPmdLen };
enum class VmFlagsWriteAssert { kNone, kLockdep, kAlways };

struct MmProfile {
  bool forkOpenBeforeCopy = true;                               // fork_open_before_copy
  MunmapSplitStyle munmapSplitStyle = MunmapSplitStyle::kV6_5;  // munmap_split_style
  FileThpPlacement fileThpPlacement = FileThpPlacement::kOff;   // file_thp_placement
  bool thpPlacementNeedsNullHint = false;                       // thp_placement_needs_null_hint
  bool thpSysfsGatesPfnmap = false;                             // thp_sysfs_gates_pfnmap
  VmFlagsWriteAssert vmFlagsWriteAssert = VmFlagsWriteAssert::kAlways;  // vm_flags_write_assert
  bool forkClearsVmPat = false;                                         // fork_clears_vm_pat
  // Faults first try the per-VMA lock (CONFIG_PER_VMA_LOCK; file VMAs since 6.7).
  bool perVmaLock = true;
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
  // Overcommit and /proc (vfio-uapi.md §0, §9, §10).
  bool vmeLogBytes = true;                 // vme_log_bytes
  bool fixedMapSurvivesChargeFail = true;  // fixed_map_survives_charge_fail
  bool vmPatOnFill = true;                 // vm_pat_on_fill
  // MADV_REMOVE asks vma_is_shared_maywrite() (v6.7, "mm: drop the
  // assumption that VM_SHARED always implies writable"); before, it asked
  // for VM_SHARED|VM_WRITE, so a read-only shared mapping was -EACCES.
  bool madviseRemoveMaywrite = true;
  // MADV_DONTNEED(_LOCKED) and MADV_FREE of a range within one VMA take
  // only that VMA's read lock (try_vma_read_lock(), ≈6.17; "mm: use
  // per_vma lock for MADV_DONTNEED"). On in linux-6.19 only.
  bool madviseVmaReadLock = false;
};

// The THP sysfs "enabled" setting (/sys/kernel/mm/transparent_hugepage/enabled).
enum class ThpEnabled { kAlways, kMadvise, kNever };

}  // namespace vfiomm
