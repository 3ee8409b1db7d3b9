// The vfio half of a kernel profile (vfio-bar-mapping.md, vfio-uapi.md §0,
// dma-mapping.md §0): the version switches vfio/ reads
// (kernel/kernel_profile.h has the named profiles).
#pragma once

namespace vfiomm {

enum class G3Variant { kG3_0, kG3_1, kG3_2 };
// How type1 turns a vaddr inside a VM_PFNMAP VMA into a pfn (dma-mapping.md
// §0, eras P2-P4): follow_pte() sees 4 KiB PTEs only; follow_pfnmap_start()
// also PMD/PUD leaves; from 6.15 its addr_mask lets one lookup cover the leaf.
enum class Type1PfnLookup { kFollowPte, kFollowPfnmap, kFollowPfnmapLeafStride };

struct VfioProfile {
  G3Variant g3Variant = G3Variant::kG3_2;  // g3_variant
  bool fdQwordAccess = true;               // fd_qword_access
  bool romQwordAccess = true;              // rom_qword_access
  bool vfioSetsAllowAnyUncached = true;    // vfio_sets_allow_any_uncached
  // The vfio device uapi (vfio-uapi.md §0); all arrived by 6.6.
  bool devinfoCopybackV2 = true;  // devinfo_copyback: v2 copies min(argsz, 24)
  bool atomicCompCap = true;      // atomic_comp_cap
  bool msixDynamic = true;        // msix_dynamic (x86 with per-device MSI domains)
  bool hotResetCdev = true;       // hot_reset_cdev
  bool dmabufFeature = false;     // dmabuf_feature (6.19)
  bool anonInodeNoexec = false;   // anon_inode_noexec
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
};

}  // namespace vfiomm
