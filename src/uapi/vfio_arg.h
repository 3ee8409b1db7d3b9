// VfioVarArg: a vfio argument that ends in a flexible array (hot reset and
// its info), in one 8-byte-aligned buffer with argsz set, as C code
// allocates it: `HotResetArg a(2); a->count = 2; a->group_fds[0] = g;`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "abi/vfio.h"

namespace vfiomm::uapi {

template <typename Header, typename Elem>
class VfioVarArg {
 public:
  explicit VfioVarArg(size_t n)
      : buf_((sizeof(Header) + n * sizeof(Elem) + sizeof(uint64_t) - 1) / sizeof(uint64_t)) {
    get()->argsz = static_cast<uint32_t>(sizeof(Header) + n * sizeof(Elem));
  }

  Header* get() { return reinterpret_cast<Header*>(buf_.data()); }
  Header* operator->() { return get(); }

 private:
  std::vector<uint64_t> buf_;
};

using HotResetArg = VfioVarArg<vfio_pci_hot_reset, int32_t>;
using HotResetInfoArg = VfioVarArg<vfio_pci_hot_reset_info, vfio_pci_dependent_device>;

// An ioctl whose argument is a value, not a pointer (VFIO_SET_IOMMU,
// VFIO_CHECK_EXTENSION), as C code passes it through ioctl's `...`.
inline void* ioctlArg(unsigned long value) { return reinterpret_cast<void*>(value); }

// A VFIO_DEVICE_PCI_HOT_RESET argument naming `groupFds`.
inline HotResetArg hotResetArg(const std::vector<int32_t>& groupFds, uint32_t flags = 0) {
  HotResetArg arg(groupFds.size());
  arg->flags = flags;
  arg->count = static_cast<uint32_t>(groupFds.size());
  for (size_t i = 0; i < groupFds.size(); ++i) arg->group_fds[i] = groupFds[i];
  return arg;
}

// VFIO_DEVICE_FEATURE GET|DMA_BUF for one range of BAR `region`: the
// feature header, the dma-buf request and its range in one buffer.
class DmaBufArg {
 public:
  DmaBufArg(uint32_t region, uint64_t offset, uint64_t length, uint32_t openFlags) {
    auto* f = reinterpret_cast<vfio_device_feature*>(buf_.data());
    f->argsz = static_cast<uint32_t>(kBytes);
    f->flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF;
    auto* req = reinterpret_cast<vfio_device_feature_dma_buf*>(f->data);
    req->region_index = region;
    req->open_flags = openFlags;
    req->nr_ranges = 1;
    req->dma_ranges[0] = vfio_region_dma_range{offset, length};
  }
  void* get() { return buf_.data(); }

 private:
  static constexpr size_t kBytes = sizeof(vfio_device_feature) +
                                   sizeof(vfio_device_feature_dma_buf) +
                                   sizeof(vfio_region_dma_range);
  std::vector<uint64_t> buf_ =
      std::vector<uint64_t>((kBytes + sizeof(uint64_t) - 1) / sizeof(uint64_t));
};

}  // namespace vfiomm::uapi
