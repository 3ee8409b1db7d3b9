// The vfio ioctls and their argument structs as include/uapi/linux/vfio.h
// spells them, in C++ casing, so a test written for a real kernel ports line
// by line: `vfio_region_info info{.argsz = sizeof(info), .index = 2};
// proc.ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &info)`.
#pragma once

#include <cstdint>
#include <vector>

namespace vfiomm::uapi {

// Request numbers: the names matter, the values are the model's own.
enum IoctlRequest : unsigned long {
  VFIO_SET_IOMMU = 0x3b66,
  VFIO_GROUP_SET_CONTAINER = 0x3b68,
  VFIO_GROUP_GET_DEVICE_FD = 0x3b6a,
  VFIO_DEVICE_GET_REGION_INFO = 0x3b6c,
  VFIO_DEVICE_RESET = 0x3b6f,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO = 0x3b70,
  VFIO_DEVICE_PCI_HOT_RESET = 0x3b71,
  VFIO_DEVICE_FEATURE = 0x3b75,
  VFIO_DEVICE_BIND_IOMMUFD = 0x3b76,
};

inline constexpr int VFIO_TYPE1v2_IOMMU = 3;

struct vfio_region_info {
  uint32_t argsz = sizeof(vfio_region_info);
  uint32_t flags = 0;
  uint32_t index = 0;
  uint32_t cap_offset = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
  std::vector<uint16_t> caps;  // the capability chain's ids, in order
};
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_READ = 1U << 0;
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_WRITE = 1U << 1;
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_MMAP = 1U << 2;
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_CAPS = 1U << 3;
inline constexpr uint16_t VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;

struct vfio_group_get_device_fd {
  const char* name;
};

struct vfio_device_bind_iommufd {
  uint32_t argsz = sizeof(vfio_device_bind_iommufd);
  uint32_t flags = 0;
  int32_t iommufd = -1;
};

struct vfio_pci_hot_reset {
  uint32_t argsz = sizeof(vfio_pci_hot_reset);
  uint32_t flags = 0;
  std::vector<int32_t> group_fds;  // empty for a cdev-opened device
};

struct vfio_pci_hot_reset_info {
  uint32_t argsz = sizeof(vfio_pci_hot_reset_info);
  uint32_t flags = 0;
  std::vector<uint32_t> devices;  // segment/bus/devfn would be here; the count is what matters
};

struct vfio_device_feature {
  uint32_t argsz = sizeof(vfio_device_feature);
  uint32_t flags = 0;
};
inline constexpr uint32_t VFIO_DEVICE_FEATURE_SET = 1U << 17;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY = 3;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_LOW_POWER_EXIT = 5;

// Region offsets of the device file (VFIO_PCI_INDEX_TO_OFFSET).
constexpr uint64_t VFIO_PCI_INDEX_TO_OFFSET(uint32_t index) { return uint64_t{index} << 40; }
inline constexpr uint32_t VFIO_PCI_BAR0_REGION_INDEX = 0;
inline constexpr uint32_t VFIO_PCI_ROM_REGION_INDEX = 6;
inline constexpr uint32_t VFIO_PCI_CONFIG_REGION_INDEX = 7;

}  // namespace vfiomm::uapi
