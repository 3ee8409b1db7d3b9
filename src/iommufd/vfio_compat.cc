#include "iommufd/vfio_compat.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

#include "abi/iommufd.h"
#include "abi/vfio.h"
#include "base/user_copy.h"
#include "iommu/iommu.h"
#include "iommufd/io_pagetable.h"
#include "iommufd/iommufd_ctx.h"
#include "iommufd/iommufd_profile.h"

namespace vfiomm {

namespace {

constexpr uint32_t kMapFlags = uapi::VFIO_DMA_MAP_FLAG_READ | uapi::VFIO_DMA_MAP_FLAG_WRITE;
constexpr uint32_t kInfoSize = sizeof(uapi::vfio_iommu_type1_info);

// iommufd's own limit follows the memory cgroup; the compat layer reports
// U32_MAX rather than type1's U16_MAX default.
constexpr uint32_t kCompatDmaAvail = 0xFFFF'FFFF;

// A capability the way iommufd_vfio_iommu_get_info() emits it: written
// only where it fits in the caller's buffer, its size counted either way.
struct CapWriter {
  uint8_t* user;
  uint32_t argsz;

  // The room left at `offset`: 0 when the buffer ends before it.
  uint32_t room(uint32_t offset) const { return argsz > offset ? argsz - offset : 0; }
  Status put(uint32_t offset, const void* src, uint32_t size) const {
    return copyToUser(user + offset, src, size);
  }
};

uint32_t dmaAvailCap(const CapWriter& w, uint32_t offset, Status* st) {
  uapi::vfio_iommu_type1_info_dma_avail cap;
  cap.header.id = uapi::VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL;
  cap.header.version = 1;
  cap.header.next = 0;  // linked once the next one is placed
  cap.avail = kCompatDmaAvail;
  if (w.room(offset) >= sizeof(cap)) *st = w.put(offset, &cap, sizeof(cap));
  return sizeof(cap);
}

// Every hole of the reserved ranges as one inclusive range; each range and
// the fixed part are written only if they fit.
uint32_t iovaRangeCap(const CapWriter& w, uint32_t offset, const std::vector<IovaRange>& holes,
                      Status* st) {
  uapi::vfio_iommu_type1_info_cap_iova_range cap;
  cap.header.id = uapi::VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
  cap.header.version = 1;
  cap.header.next = 0;  // the last capability
  constexpr uint32_t kRange = sizeof(uapi::vfio_iova_range);
  for (const IovaRange& h : holes) {
    const uapi::vfio_iova_range r{h.start, h.last};
    const uint32_t at = sizeof(cap) + cap.nr_iovas * kRange;
    if (*st && w.room(offset) >= at + kRange) *st = w.put(offset + at, &r, kRange);
    ++cap.nr_iovas;
  }
  const uint32_t size = sizeof(cap) + cap.nr_iovas * kRange;
  if (*st && w.room(offset) >= size) *st = w.put(offset, &cap, sizeof(cap));
  return size;
}

}  // namespace

bool IommufdVfioCompat::handles(unsigned long request) {
  return (request & 0xFF) < uapi::IOMMUFD_CMD_BASE;
}

Result<long> IommufdVfioCompat::ioctl(unsigned long request, void* arg, const IoptSource& source) {
  // CHECK_EXTENSION and SET_IOMMU take their value as the argument itself.
  const uintptr_t value = reinterpret_cast<uintptr_t>(arg);
  switch (request) {
    case uapi::VFIO_GET_API_VERSION: return uapi::VFIO_API_VERSION;
    case uapi::VFIO_CHECK_EXTENSION: return checkExtension(value);
    case uapi::VFIO_SET_IOMMU: return setIommu(value);
    case uapi::VFIO_IOMMU_GET_INFO: return getInfo(arg);
    case uapi::VFIO_IOMMU_MAP_DMA: return mapDma(arg, source);
    case uapi::VFIO_IOMMU_UNMAP_DMA: return unmapDma(arg);
    default:
      // DIRTY_PAGES included: dirty tracking is the native HWPT's.
      return fail(Errno::kENOTTY);
  }
}

long IommufdVfioCompat::checkExtension(unsigned long ext) {
  switch (ext) {
    case uapi::VFIO_TYPE1_IOMMU:
    case uapi::VFIO_TYPE1v2_IOMMU:
    case uapi::VFIO_UNMAP_ALL: return 1;
    case uapi::VFIO_DMA_CC_IOMMU:
      // Every domain of the model enforces coherency; without a compat
      // IOAS the kernel returns get_compat_ioas()'s error as the answer.
      return ictx_.compatIoas() != nullptr ? 1 : -static_cast<long>(toInt(Errno::kENODEV));
    default:
      // UPDATE_VADDR and the reserved nesting type are refused on purpose.
      return 0;
  }
}

Result<long> IommufdVfioCompat::setIommu(unsigned long type) {
  if (type != uapi::VFIO_TYPE1_IOMMU && type != uapi::VFIO_TYPE1v2_IOMMU)
    return fail(Errno::kEINVAL);
  std::shared_ptr<IoPagetable> iopt = ictx_.compatIoas();
  if (iopt == nullptr) return fail(Errno::kENODEV);
  // v1 may unmap inside a mapping; huge IOPTEs could not be split, so the
  // IOAS gives them up. Nothing else distinguishes the two modes.
  if (type == uapi::VFIO_TYPE1_IOMMU) {
    if (auto st = iopt->disableLargePages(); !st) return fail(st.error());
  }
  return 0;
}

Result<long> IommufdVfioCompat::getInfo(void* arg) {
  uapi::vfio_iommu_type1_info info;
  constexpr uint32_t minsz = offsetof(uapi::vfio_iommu_type1_info, cap_offset);
  if (auto st = copyFromUser(&info, arg, minsz); !st) return fail(st.error());
  if (info.argsz < minsz) return fail(Errno::kEINVAL);
  const uint32_t copysz = std::min(info.argsz, kInfoSize);
  std::shared_ptr<IoPagetable> iopt = ictx_.compatIoas();
  if (iopt == nullptr) return fail(Errno::kENODEV);

  info.flags = uapi::VFIO_IOMMU_INFO_PGSIZES | uapi::VFIO_IOMMU_INFO_CAPS;
  info.iova_pgsizes = iopt->pgsizeBitmap();
  info.cap_offset = 0;
  const CapWriter w{static_cast<uint8_t*>(arg), info.argsz};
  Status st = ok();
  uint32_t total = kInfoSize;
  const uint32_t first = dmaAvailCap(w, total, &st);
  // The first cap's `next` is written once the buffer reached its start.
  const uint32_t second = total + first;
  const uint32_t last = iovaRangeCap(w, second, iopt->iovaHoles(), &st);
  if (st && info.argsz >= second) {
    const uint32_t next = second;
    st = w.put(total + offsetof(uapi::vfio_info_cap_header, next), &next, sizeof(next));
  }
  if (!st) return fail(st.error());
  total = second + last;
  if (info.argsz >= total) info.cap_offset = kInfoSize;
  info.argsz = total;
  if (auto cst = copyToUser(arg, &info, copysz); !cst) return fail(cst.error());
  return 0;
}

Result<long> IommufdVfioCompat::mapDma(void* arg, const IoptSource& source) {
  uapi::vfio_iommu_type1_dma_map map;
  if (auto st = copyFromUser(&map, arg, sizeof(map)); !st) return fail(st.error());
  // VADDR (and any other flag) is not offered.
  if (map.argsz < sizeof(map) || (map.flags & ~kMapFlags) != 0) return fail(Errno::kEINVAL);
  int prot = 0;
  if (map.flags & uapi::VFIO_DMA_MAP_FLAG_READ) prot |= iommuprot::kRead;
  if (map.flags & uapi::VFIO_DMA_MAP_FLAG_WRITE) prot |= iommuprot::kWrite;
  std::shared_ptr<IoPagetable> iopt = ictx_.compatIoas();
  if (iopt == nullptr) return fail(Errno::kENODEV);
  auto iova = iopt->mapUserPages(source, map.vaddr, map.size, map.iova, /*fixedIova=*/true, prot);
  if (!iova) return fail(iova.error());
  return 0;
}

Result<long> IommufdVfioCompat::unmapDma(void* arg) {
  uapi::vfio_iommu_type1_dma_unmap unmap;
  if (auto st = copyFromUser(&unmap, arg, sizeof(unmap)); !st) return fail(st.error());
  // GET_DIRTY_BITMAP and VADDR are not offered.
  if (unmap.argsz < sizeof(unmap) || (unmap.flags & ~uapi::VFIO_DMA_UNMAP_FLAG_ALL) != 0)
    return fail(Errno::kEINVAL);
  std::shared_ptr<IoPagetable> iopt = ictx_.compatIoas();
  if (iopt == nullptr) return fail(Errno::kENODEV);
  Result<uint64_t> removed = 0;
  if (unmap.flags & uapi::VFIO_DMA_UNMAP_FLAG_ALL) {
    if (unmap.iova != 0 || unmap.size != 0) return fail(Errno::kEINVAL);
    removed = iopt->unmapAll();
  } else {
    // TYPE1 mode: cut the areas at both ends first, so that whatever lies
    // inside the range can go (the cut before 0 is not needed).
    if (iopt->largePagesDisabled()) {
      Status cut = iopt->cutAfter(unmap.iova + unmap.size - 1);
      if (cut && unmap.iova != 0) cut = iopt->cutAfter(unmap.iova - 1);
      if (!cut) return fail(cut.error());
    }
    removed = iopt->unmapIova(unmap.iova, unmap.size);
    // Nothing there: -ENOENT until afb47765f923 made it type1's 0 with
    // size 0 (iommufd_compat_unmap_empty).
    if (removed && *removed == 0 && !profile_.compatUnmapEmpty) removed = fail(Errno::kENOENT);
  }
  unmap.size = removed ? *removed : 0;
  if (auto st = copyToUser(arg, &unmap, sizeof(unmap)); !st) return fail(st.error());
  if (!removed) return fail(removed.error());
  return 0;
}

}  // namespace vfiomm
