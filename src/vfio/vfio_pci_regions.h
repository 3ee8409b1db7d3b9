// Region indices, offsets and flags of the vfio-pci device file
// (include/uapi/linux/vfio.h, vfio-bar-mapping.md §1).
#pragma once

#include <cstdint>

namespace vfiomm::vfio {

inline constexpr unsigned kOffsetShift = 40;                         // VFIO_PCI_OFFSET_SHIFT
inline constexpr uint64_t kOffsetMask = (1ULL << kOffsetShift) - 1;  // VFIO_PCI_OFFSET_MASK
constexpr uint64_t indexToOffset(uint32_t index) { return uint64_t{index} << kOffsetShift; }
constexpr uint32_t offsetToIndex(uint64_t off) {
  return static_cast<uint32_t>(off >> kOffsetShift);
}
// In mmap terms: a region starts at vm_pgoff = index << 28.
inline constexpr unsigned kPgoffIndexShift = kOffsetShift - 12;
inline constexpr uint64_t kPgoffMask = (1ULL << kPgoffIndexShift) - 1;

inline constexpr uint32_t kBar0 = 0;
inline constexpr uint32_t kBar5 = 5;
inline constexpr uint32_t kRom = 6;         // VFIO_PCI_ROM_REGION_INDEX
inline constexpr uint32_t kConfig = 7;      // VFIO_PCI_CONFIG_REGION_INDEX
inline constexpr uint32_t kVga = 8;         // VFIO_PCI_VGA_REGION_INDEX
inline constexpr uint32_t kNumRegions = 9;  // VFIO_PCI_NUM_REGIONS

// vfio_region_info.flags
inline constexpr uint32_t kRegionRead = 1U << 0;
inline constexpr uint32_t kRegionWrite = 1U << 1;
inline constexpr uint32_t kRegionMmap = 1U << 2;

}  // namespace vfiomm::vfio
