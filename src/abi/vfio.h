// The vfio user ABI: what include/uapi/linux/vfio.h defines, with Linux's
// names, numbers and byte layouts, so that a program written for a real
// kernel passes the same bytes here (docs/api.md). Both sides include it:
// the kernel side (vfio/) reads and writes these structs in the caller's
// buffer as copy_from_user/copy_to_user would, the user side (uapi/) hands
// them through.
//
// Variable-length structs end in a flexible array member, as in the kernel
// header; C++ accepts them only as an extension, which is why this header
// is marked a system header (as the real one is). Every field starts at 0,
// so `vfio_region_info info{.argsz = sizeof(info), .index = 2};` is the C
// initialiser it looks like.
#pragma once
#pragma GCC system_header

#include <cstdint>

namespace vfiomm::uapi {

// --- ioctl numbers: _IO(VFIO_TYPE, VFIO_BASE + n), no size encoded ----------

inline constexpr unsigned long VFIO_TYPE = ';';
inline constexpr unsigned long VFIO_BASE = 100;
constexpr unsigned long vfioIo(unsigned long n) { return (VFIO_TYPE << 8) | (VFIO_BASE + n); }

enum IoctlRequest : unsigned long {
  VFIO_GET_API_VERSION = vfioIo(0),
  VFIO_CHECK_EXTENSION = vfioIo(1),
  VFIO_SET_IOMMU = vfioIo(2),
  VFIO_GROUP_GET_STATUS = vfioIo(3),
  VFIO_GROUP_SET_CONTAINER = vfioIo(4),
  VFIO_GROUP_UNSET_CONTAINER = vfioIo(5),
  VFIO_GROUP_GET_DEVICE_FD = vfioIo(6),  // arg: the device name, a C string
  VFIO_DEVICE_GET_INFO = vfioIo(7),
  VFIO_DEVICE_GET_REGION_INFO = vfioIo(8),
  VFIO_DEVICE_GET_IRQ_INFO = vfioIo(9),
  VFIO_DEVICE_SET_IRQS = vfioIo(10),
  VFIO_DEVICE_RESET = vfioIo(11),
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO = vfioIo(12),
  VFIO_DEVICE_PCI_HOT_RESET = vfioIo(13),
  VFIO_DEVICE_IOEVENTFD = vfioIo(16),
  VFIO_DEVICE_FEATURE = vfioIo(17),
  VFIO_DEVICE_BIND_IOMMUFD = vfioIo(18),
  VFIO_DEVICE_ATTACH_IOMMUFD_PT = vfioIo(19),
  VFIO_DEVICE_DETACH_IOMMUFD_PT = vfioIo(20),
  VFIO_IOMMU_GET_INFO = vfioIo(12),  // on a container (the device's +12 is another fd's)
  VFIO_IOMMU_MAP_DMA = vfioIo(13),
  VFIO_IOMMU_UNMAP_DMA = vfioIo(14),
  VFIO_IOMMU_DIRTY_PAGES = vfioIo(17),  // on a container; not modelled (-ENOTTY)
};

inline constexpr int VFIO_API_VERSION = 0;
inline constexpr int VFIO_TYPE1_IOMMU = 1;
inline constexpr int VFIO_TYPE1v2_IOMMU = 3;
inline constexpr int VFIO_DMA_CC_IOMMU = 4;
inline constexpr int VFIO_UNMAP_ALL = 9;
inline constexpr int VFIO_UPDATE_VADDR = 10;

// --- VFIO_GROUP_GET_STATUS -----------------------------------------------------------

struct vfio_group_status {
  uint32_t argsz = 0;
  uint32_t flags = 0;
};
inline constexpr uint32_t VFIO_GROUP_FLAGS_VIABLE = 1U << 0;
inline constexpr uint32_t VFIO_GROUP_FLAGS_CONTAINER_SET = 1U << 1;

// --- capability chains (vfio_info_cap_header) -----------------------------------

struct vfio_info_cap_header {
  uint16_t id = 0;
  uint16_t version = 0;
  uint32_t next;  // offset of the next capability from the struct's start; 0 ends
};

// --- VFIO_DEVICE_GET_INFO ----------------------------------------------------------

struct vfio_device_info {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  uint32_t num_regions = 0;
  uint32_t num_irqs = 0;
  uint32_t cap_offset = 0;
  uint32_t pad = 0;
};
inline constexpr uint32_t VFIO_DEVICE_FLAGS_RESET = 1U << 0;
inline constexpr uint32_t VFIO_DEVICE_FLAGS_PCI = 1U << 1;
inline constexpr uint32_t VFIO_DEVICE_FLAGS_CAPS = 1U << 7;

inline constexpr uint16_t VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP = 5;
struct vfio_device_info_cap_pci_atomic_comp {
  vfio_info_cap_header header;
  uint32_t flags = 0;
  uint32_t reserved = 0;
};
inline constexpr uint32_t VFIO_PCI_ATOMIC_COMP32 = 1U << 0;
inline constexpr uint32_t VFIO_PCI_ATOMIC_COMP64 = 1U << 1;
inline constexpr uint32_t VFIO_PCI_ATOMIC_COMP128 = 1U << 2;

// --- VFIO_DEVICE_GET_REGION_INFO ---------------------------------------------------

struct vfio_region_info {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  uint32_t index = 0;
  uint32_t cap_offset = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
};
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_READ = 1U << 0;
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_WRITE = 1U << 1;
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_MMAP = 1U << 2;
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_CAPS = 1U << 3;

inline constexpr uint16_t VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;
struct vfio_region_sparse_mmap_area {
  uint64_t offset = 0;
  uint64_t size = 0;
};
struct vfio_region_info_cap_sparse_mmap {
  vfio_info_cap_header header;
  uint32_t nr_areas = 0;
  uint32_t reserved = 0;
  vfio_region_sparse_mmap_area areas[];
};

inline constexpr uint16_t VFIO_REGION_INFO_CAP_TYPE = 2;
struct vfio_region_info_cap_type {
  vfio_info_cap_header header;
  uint32_t type = 0;
  uint32_t subtype = 0;
};

inline constexpr uint16_t VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;

// vfio-pci's region indices and their offsets in the device file.
inline constexpr uint32_t VFIO_PCI_BAR0_REGION_INDEX = 0;
inline constexpr uint32_t VFIO_PCI_BAR5_REGION_INDEX = 5;
inline constexpr uint32_t VFIO_PCI_ROM_REGION_INDEX = 6;
inline constexpr uint32_t VFIO_PCI_CONFIG_REGION_INDEX = 7;
inline constexpr uint32_t VFIO_PCI_VGA_REGION_INDEX = 8;
inline constexpr uint32_t VFIO_PCI_NUM_REGIONS = 9;
inline constexpr unsigned VFIO_PCI_OFFSET_SHIFT = 40;
constexpr uint64_t VFIO_PCI_INDEX_TO_OFFSET(uint32_t index) {
  return uint64_t{index} << VFIO_PCI_OFFSET_SHIFT;
}

// --- VFIO_DEVICE_GET_IRQ_INFO ------------------------------------------------------

struct vfio_irq_info {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  uint32_t index = 0;
  uint32_t count = 0;
};
inline constexpr uint32_t VFIO_IRQ_INFO_EVENTFD = 1U << 0;
inline constexpr uint32_t VFIO_IRQ_INFO_MASKABLE = 1U << 1;
inline constexpr uint32_t VFIO_IRQ_INFO_AUTOMASKED = 1U << 2;
inline constexpr uint32_t VFIO_IRQ_INFO_NORESIZE = 1U << 3;

inline constexpr uint32_t VFIO_PCI_INTX_IRQ_INDEX = 0;
inline constexpr uint32_t VFIO_PCI_MSI_IRQ_INDEX = 1;
inline constexpr uint32_t VFIO_PCI_MSIX_IRQ_INDEX = 2;
inline constexpr uint32_t VFIO_PCI_ERR_IRQ_INDEX = 3;
inline constexpr uint32_t VFIO_PCI_REQ_IRQ_INDEX = 4;
inline constexpr uint32_t VFIO_PCI_NUM_IRQS = 5;

// --- hot reset ---------------------------------------------------------------------

struct vfio_pci_dependent_device {
  union {
    uint32_t group_id = 0;
    uint32_t devid;
  };
  uint16_t segment = 0;
  uint8_t bus;
  uint8_t devfn;  // slot << 3 | function
};
inline constexpr uint32_t VFIO_PCI_DEVID_OWNED = 0;
inline constexpr uint32_t VFIO_PCI_DEVID_NOT_OWNED = 0xffffffffU;

struct vfio_pci_hot_reset_info {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  uint32_t count = 0;
  vfio_pci_dependent_device devices[];
};
inline constexpr uint32_t VFIO_PCI_HOT_RESET_FLAG_DEV_ID = 1U << 0;
inline constexpr uint32_t VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED = 1U << 1;

struct vfio_pci_hot_reset {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  uint32_t count = 0;
  int32_t group_fds[];
};

// --- VFIO_DEVICE_FEATURE -----------------------------------------------------------

struct vfio_device_feature {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  uint8_t data[];
};
inline constexpr uint32_t VFIO_DEVICE_FEATURE_MASK = 0xffff;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_GET = 1U << 16;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_SET = 1U << 17;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_PROBE = 1U << 18;

inline constexpr uint32_t VFIO_DEVICE_FEATURE_PCI_VF_TOKEN = 0;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_MIGRATION = 1;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE = 2;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY = 3;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP = 4;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_LOW_POWER_EXIT = 5;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_DMA_LOGGING_START = 6;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP = 7;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT = 8;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_MIG_DATA_SIZE = 9;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_BUS_MASTER = 10;
inline constexpr uint32_t VFIO_DEVICE_FEATURE_DMA_BUF = 11;

// VFIO_DEVICE_FEATURE_DMA_BUF (GET, v6.19): a dma-buf fd for `nr_ranges`
// page-aligned slices of BAR `region_index`, opened with `open_flags`.
struct vfio_region_dma_range {
  uint64_t offset = 0;
  uint64_t length = 0;
};
struct vfio_device_feature_dma_buf {
  uint32_t region_index = 0;
  uint32_t open_flags = 0;
  uint32_t flags = 0;
  uint32_t nr_ranges = 0;
  vfio_region_dma_range dma_ranges[];
};

// A proposal, not merged (Matt Evans, 2026; dma-mapping.md §4.4): the
// permanent revoke of one of the device's dma-bufs, SET with the buffer's
// fd. Its number is 13 in the version modelled; proposals disagree on
// 12-14, so it is unstable.
inline constexpr uint32_t VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE = 13;
struct vfio_device_feature_dma_buf_revoke {
  int32_t dmabuf_fd = 0;
};

struct vfio_device_low_power_entry_with_wakeup {
  int32_t wakeup_eventfd = 0;
  uint32_t reserved = 0;
};

// --- iommufd binding ---------------------------------------------------------------

struct vfio_device_bind_iommufd {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  int32_t iommufd = 0;
  uint32_t out_devid = 0;
};

// `pasid` came later (v6.15, with the flag VFIO_DEVICE_ATTACH_PASID);
// callers of the first version pass argsz 12.
struct vfio_device_attach_iommufd_pt {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  uint32_t pt_id = 0;
  uint32_t pasid = 0;
};

struct vfio_device_detach_iommufd_pt {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  uint32_t pasid = 0;
};

// --- the type1 IOMMU (container ioctls) --------------------------------------------

struct vfio_iommu_type1_info {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  uint64_t iova_pgsizes = 0;
  uint32_t cap_offset = 0;
  uint32_t pad = 0;
};
inline constexpr uint32_t VFIO_IOMMU_INFO_PGSIZES = 1U << 0;
inline constexpr uint32_t VFIO_IOMMU_INFO_CAPS = 1U << 1;

inline constexpr uint16_t VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
inline constexpr uint16_t VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
inline constexpr uint16_t VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

struct vfio_iova_range {
  uint64_t start = 0;
  uint64_t end = 0;  // inclusive
};

struct vfio_iommu_type1_info_cap_iova_range {
  vfio_info_cap_header header;
  uint32_t nr_iovas = 0;
  uint32_t reserved = 0;
  vfio_iova_range iova_ranges[];
};

struct vfio_iommu_type1_info_cap_migration {
  vfio_info_cap_header header;
  uint32_t flags = 0;
  uint64_t pgsize_bitmap = 0;
  uint64_t max_dirty_bitmap_size = 0;
};

struct vfio_iommu_type1_info_dma_avail {
  vfio_info_cap_header header;
  uint32_t avail = 0;
};

struct vfio_iommu_type1_dma_map {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  uint64_t vaddr = 0;
  uint64_t iova = 0;
  uint64_t size = 0;
};
inline constexpr uint32_t VFIO_DMA_MAP_FLAG_READ = 1U << 0;
inline constexpr uint32_t VFIO_DMA_MAP_FLAG_WRITE = 1U << 1;
inline constexpr uint32_t VFIO_DMA_MAP_FLAG_VADDR = 1U << 2;

struct vfio_iommu_type1_dma_unmap {
  uint32_t argsz = 0;
  uint32_t flags = 0;
  uint64_t iova = 0;
  uint64_t size = 0;
  uint8_t data[];
};
inline constexpr uint32_t VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1U << 0;
inline constexpr uint32_t VFIO_DMA_UNMAP_FLAG_ALL = 1U << 1;
inline constexpr uint32_t VFIO_DMA_UNMAP_FLAG_VADDR = 1U << 2;

static_assert(sizeof(vfio_group_status) == 8);
static_assert(sizeof(vfio_iommu_type1_info) == 24);
static_assert(sizeof(vfio_iova_range) == 16);
static_assert(sizeof(vfio_iommu_type1_info_cap_iova_range) == 16);
static_assert(sizeof(vfio_iommu_type1_info_cap_migration) == 32);
static_assert(sizeof(vfio_iommu_type1_info_dma_avail) == 12);
static_assert(sizeof(vfio_iommu_type1_dma_map) == 32);
static_assert(sizeof(vfio_iommu_type1_dma_unmap) == 24);
static_assert(sizeof(vfio_info_cap_header) == 8);
static_assert(sizeof(vfio_device_info) == 24);
static_assert(sizeof(vfio_device_info_cap_pci_atomic_comp) == 16);
static_assert(sizeof(vfio_region_info) == 32);
static_assert(sizeof(vfio_region_info_cap_type) == 16);
static_assert(sizeof(vfio_region_info_cap_sparse_mmap) == 16);
static_assert(sizeof(vfio_irq_info) == 16);
static_assert(sizeof(vfio_pci_dependent_device) == 8);
static_assert(sizeof(vfio_pci_hot_reset_info) == 12);
static_assert(sizeof(vfio_pci_hot_reset) == 12);
static_assert(sizeof(vfio_device_feature) == 8);
static_assert(sizeof(vfio_device_low_power_entry_with_wakeup) == 8);
static_assert(sizeof(vfio_region_dma_range) == 16);
static_assert(sizeof(vfio_device_feature_dma_buf) == 16);
static_assert(sizeof(vfio_device_bind_iommufd) == 16);
static_assert(sizeof(vfio_device_attach_iommufd_pt) == 16);
static_assert(sizeof(vfio_device_detach_iommufd_pt) == 12);

}  // namespace vfiomm::uapi
