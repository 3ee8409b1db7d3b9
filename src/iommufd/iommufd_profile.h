// The iommufd half of a kernel profile (dma-mapping.md §0): the version
// switches iommufd/ reads (kernel/kernel_profile.h has the named profiles).
#pragma once

namespace vfiomm {

struct IommufdProfile {
  // iommufd_compat_unmap_empty: the vfio compat UNMAP_DMA of a range with
  // nothing mapped is 0 with size 0, as in type1, instead of -ENOENT
  // (afb47765f923, ≈v6.18, backported to stables in Nov 2025, 6.6.y
  // among them). Off in every named profile: override it.
  bool compatUnmapEmpty = false;
  // iommufd_map_file: IOMMU_IOAS_MAP_FILE exists (memfd, v6.13; dma-buf
  // fds from v6.19, dmabuf_feature). Before it the ioctl number is
  // unknown to iommufd: -ENOTTY.
  bool mapFile = true;
  // iommufd_fops_mmap: /dev/iommu has ->mmap (v6.17, with the vIOMMU
  // hardware queues whose MMIO it maps), so mmap(2) of an iommufd gets the
  // driver's -EINVAL/-EPERM/-ENXIO instead of do_mmap()'s -ENODEV. On in
  // linux-6.19 only among the named profiles.
  bool mmap = false;
};

}  // namespace vfiomm
