// IommufdVfioCompat: a /dev/iommu fd answering the VFIO container ioctls
// (drivers/iommu/iommufd/vfio_compat.c, dma-mapping.md §3.3). They act on
// the iommufd's compat IOAS, which VFIO_GROUP_SET_CONTAINER with the fd
// creates or reuses; without one most of them are -ENODEV. Differences
// from type1: no UPDATE_VADDR, no MIGRATION capability, DMA_AVAIL is
// U32_MAX, MAP_DMA goes through the IOAS's pin path (a BAR vaddr is
// -EFAULT with a device attached), UNMAP_DMA of an area's middle is -ENOENT
// in TYPE1v2 mode and cuts the area in TYPE1 mode (large IOPTEs are off
// there), and DIRTY_PAGES is -ENOTTY.
#pragma once

#include "base/result.h"

namespace vfiomm {

class IommufdCtx;
struct IommufdProfile;
struct IoptSource;

class IommufdVfioCompat {
 public:
  IommufdVfioCompat(IommufdCtx& ictx, const IommufdProfile& profile)
      : ictx_(ictx), profile_(profile) {}

  // Whether iommufd_fops_ioctl() hands `request` to the compat layer: any
  // number below the native commands' base.
  static bool handles(unsigned long request);
  // iommufd_vfio_ioctl(); -ENOTTY for what it does not know.
  Result<long> ioctl(unsigned long request, void* arg, const IoptSource& source);

 private:
  long checkExtension(unsigned long ext);
  Result<long> setIommu(unsigned long type);
  Result<long> getInfo(void* arg);
  Result<long> mapDma(void* arg, const IoptSource& source);
  Result<long> unmapDma(void* arg);

  IommufdCtx& ictx_;
  const IommufdProfile& profile_;
};

}  // namespace vfiomm
