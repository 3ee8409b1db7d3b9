#include "sim/vmm.h"

#include <fmt/format.h>

#include <functional>

#include "abi/vfio.h"
#include "base/page_geometry.h"
#include "kernel/kernel.h"
#include "mm/vm_flags.h"
#include "pci/pci_regs.h"
#include "uapi/libc.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_group.h"

namespace vfiomm::sim {

using namespace vfiomm::uapi;

namespace {

constexpr uint64_t kConfigOffset = VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX);

tl::unexpected<VmmFailure> failed(std::string call, long rc) {
  return tl::make_unexpected(VmmFailure{std::move(call), rc});
}

}  // namespace

VmmResult<int> Vmm::openViaGroup(Process& p, Kernel& k, VfioDevice& dev) {
  if (container_ < 0) container_ = static_cast<int>(p.open("/dev/vfio/vfio", O_RDWR));
  const auto groupId = static_cast<uint32_t>(dev.group()->id());
  auto it = groupFds_.find(groupId);
  if (it == groupFds_.end()) {
    const std::string path = k.groupPath(dev);
    const long g = p.open(path, O_RDWR);
    if (g < 0) return failed(fmt::format("open({})", path), g);
    it = groupFds_.emplace(groupId, static_cast<int>(g)).first;
    int c = container_;
    if (const long rc = p.ioctl(it->second, VFIO_GROUP_SET_CONTAINER, &c); rc < 0)
      return failed("VFIO_GROUP_SET_CONTAINER", rc);
    // As QEMU does: the IOMMU type once the container has its first group.
    if (groupFds_.size() == 1)
      if (const long rc = p.ioctl(container_, VFIO_SET_IOMMU, ioctlArg(VFIO_TYPE1v2_IOMMU)); rc < 0)
        return failed("VFIO_SET_IOMMU", rc);
  }
  const long fd =
      p.ioctl(it->second, VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(dev.name().c_str()));
  if (fd < 0) return failed("VFIO_GROUP_GET_DEVICE_FD", fd);
  return static_cast<int>(fd);
}

VmmResult<int> Vmm::openCdev(Process& p, Kernel& k, VfioDevice& dev) {
  if (iommufd_ < 0) iommufd_ = static_cast<int>(p.open("/dev/iommu", O_RDWR));
  const std::string path = k.cdevPath(dev);
  const long fd = p.open(path, O_RDWR);
  if (fd < 0) return failed(fmt::format("open({})", path), fd);
  cdevFds_.push_back(static_cast<int>(fd));
  return static_cast<int>(fd);
}

long Vmm::bindIommufd(Process& p, int cdevFd) const {
  vfio_device_bind_iommufd bind{sizeof(bind), 0, iommufd_, 0};
  return p.ioctl(cdevFd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
}

long setMemoryDecode(Process& p, int deviceFd, bool on) {
  uint16_t cmd = 0;
  const long rc = p.pread(deviceFd, &cmd, 2, kConfigOffset + kPciCommand);
  if (rc != 2) return rc;
  cmd = on ? static_cast<uint16_t>(cmd | kPciCommandMemory)
           : static_cast<uint16_t>(cmd & ~kPciCommandMemory);
  return p.pwrite(deviceFd, &cmd, 2, kConfigOffset + kPciCommand);
}

namespace {

// mmap(2) of the mapping at `addr` with `fixed` flags (MAP_FIXED or 0).
using MapAt = std::function<long(uint64_t addr, int fixed)>;

// `where`: MAP_FIXED at its address; else where mmap(NULL) puts it; else a
// PROT_NONE reservation of length + align, trimmed to the aligned start,
// and MAP_FIXED there (QEMU 9.2).
VmmResult<uint64_t> place(Process& p, uint64_t length, const BarPlacement& where,
                          const MapAt& mapAt) {
  long addr = 0;
  if (where.address) {
    addr = mapAt(*where.address, map::kFixed);
  } else if (where.align == 0) {
    addr = mapAt(0, 0);
  } else {
    const long res = p.mmap(0, length + where.align, prot::kNone,
                            map::kPrivate | map::kAnonymous | map::kNoReserve, -1, 0);
    if (res < 0) return failed("reserve", res);
    const auto base = static_cast<uint64_t>(res);
    const uint64_t aligned = roundUp(base, where.align);
    if (aligned > base) p.munmap(base, aligned - base);
    const uint64_t end = base + length + where.align;
    if (end > aligned + length) p.munmap(aligned + length, end - (aligned + length));
    addr = mapAt(aligned, map::kFixed);
  }
  if (addr < 0) return failed("map", addr);
  return static_cast<uint64_t>(addr);
}

}  // namespace

VmmResult<uint64_t> mapBar(Process& p, int deviceFd, unsigned bar, uint64_t offset, uint64_t length,
                           int prot, const BarPlacement& where) {
  const uint64_t off = VFIO_PCI_INDEX_TO_OFFSET(bar) + offset;
  return place(p, length, where, [&](uint64_t addr, int fixed) {
    return p.mmap(addr, length, prot, map::kShared | fixed, deviceFd, off);
  });
}

VmmResult<uint64_t> mapAnonymous(Process& p, uint64_t length, int prot, const BarPlacement& where) {
  return place(p, length, where, [&](uint64_t addr, int fixed) {
    return p.mmap(addr, length, prot, map::kPrivate | map::kAnonymous | fixed, -1, 0);
  });
}

}  // namespace vfiomm::sim
