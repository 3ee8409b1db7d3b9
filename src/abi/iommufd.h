// The iommufd user ABI: what include/uapi/linux/iommufd.h defines for the
// native IOAS, with Linux's names, numbers and byte layouts (docs/api.md).
// Like abi/vfio.h, both sides include it: the kernel side (iommufd/) reads
// and writes these structs in the caller's buffer, the user side hands them
// through. Only the IOAS commands the model implements are listed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vfiomm::uapi {

// The kernel's names, not ours.
// NOLINTBEGIN(readability-identifier-naming)

// _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + n): the type is vfio's ';', the
// command numbers start at 0x80 so the two ABIs never collide.
inline constexpr unsigned long IOMMUFD_TYPE = ';';
inline constexpr unsigned long IOMMUFD_CMD_BASE = 0x80;
constexpr unsigned long iommufdIo(unsigned long n) {
  return (IOMMUFD_TYPE << 8) | (IOMMUFD_CMD_BASE + n);
}

enum IommufdRequest : unsigned long {
  IOMMU_DESTROY = iommufdIo(0),
  IOMMU_IOAS_ALLOC = iommufdIo(1),
  IOMMU_IOAS_MAP = iommufdIo(5),
  IOMMU_IOAS_UNMAP = iommufdIo(6),
  IOMMU_IOAS_MAP_FILE = iommufdIo(0xf),  // v6.13 (memfd); dma-buf fds from v6.19
};

struct iommu_destroy {
  uint32_t size = 0;
  uint32_t id = 0;
};

struct iommu_ioas_alloc {
  uint32_t size = 0;
  uint32_t flags = 0;
  uint32_t out_ioas_id = 0;
};

// enum iommufd_ioas_map_flags.
inline constexpr uint32_t IOMMU_IOAS_MAP_FIXED_IOVA = 1U << 0;
inline constexpr uint32_t IOMMU_IOAS_MAP_WRITEABLE = 1U << 1;
inline constexpr uint32_t IOMMU_IOAS_MAP_READABLE = 1U << 2;

struct iommu_ioas_map {
  uint32_t size = 0;
  uint32_t flags = 0;
  uint32_t ioas_id = 0;
  uint32_t __reserved = 0;
  uint64_t user_va = 0;
  uint64_t length = 0;
  uint64_t iova = 0;
};

// IOMMU_IOAS_MAP_FILE: like IOAS_MAP, but `length` bytes of the file `fd`
// from byte `start` instead of a user address.
struct iommu_ioas_map_file {
  uint32_t size = 0;
  uint32_t flags = 0;
  uint32_t ioas_id = 0;
  int32_t fd = -1;
  uint64_t start = 0;
  uint64_t length = 0;
  uint64_t iova = 0;
};

struct iommu_ioas_unmap {
  uint32_t size = 0;
  uint32_t ioas_id = 0;
  uint64_t iova = 0;
  uint64_t length = 0;
};

static_assert(IOMMU_DESTROY == 0x3b80);
static_assert(IOMMU_IOAS_ALLOC == 0x3b81);
static_assert(IOMMU_IOAS_MAP == 0x3b85);
static_assert(IOMMU_IOAS_UNMAP == 0x3b86);
static_assert(IOMMU_IOAS_MAP_FILE == 0x3b8f);
static_assert(sizeof(iommu_destroy) == 8);
static_assert(sizeof(iommu_ioas_alloc) == 12);
static_assert(sizeof(iommu_ioas_map) == 40);
static_assert(offsetof(iommu_ioas_map, iova) == 32);
static_assert(sizeof(iommu_ioas_map_file) == 40);
static_assert(offsetof(iommu_ioas_map_file, start) == 16);
static_assert(offsetof(iommu_ioas_map_file, iova) == 32);
static_assert(sizeof(iommu_ioas_unmap) == 24);

// NOLINTEND(readability-identifier-naming)

}  // namespace vfiomm::uapi
