// What a VMM does to reach a device and map its BARs, in the order QEMU does
// it: the legacy group path (container, group, VFIO_SET_IOMMU once the
// container has its first group, the device fd) or the cdev path
// (/dev/iommu, the cdev, VFIO_DEVICE_BIND_IOMMUFD); memory decode through
// the config region's COMMAND register; and a BAR mapped where QEMU 9.2's
// vfio_region_mmap puts it. The scenario runner, the BAR probe of sweep and
// explain, and the test fixtures all set devices up through it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tl/expected.hpp>
#include <vector>

namespace vfiomm {
class Kernel;
class Process;
class VfioDevice;
}  // namespace vfiomm

namespace vfiomm::sim {

// The call that failed and what it returned (a negative errno).
struct VmmFailure {
  std::string call;
  long rc = 0;
};
template <class T>
using VmmResult = tl::expected<T, VmmFailure>;

// Where a BAR mapping goes.
struct BarPlacement {
  std::optional<uint64_t> address;  // MAP_FIXED here
  uint64_t align = 0;               // else aligned like this (0: where mmap(NULL) puts it)
};

// The fds one process holds for its devices. A value: a forked child
// inherits the fds and carries a copy on.
class Vmm {
 public:
  // The device fd, or the first call that failed.
  VmmResult<int> openViaGroup(Process& p, Kernel& k, VfioDevice& dev);
  // The cdev's fd, not yet bound (bindIommufd binds it).
  VmmResult<int> openCdev(Process& p, Kernel& k, VfioDevice& dev);
  // VFIO_DEVICE_BIND_IOMMUFD of a cdev fd to this process's /dev/iommu.
  long bindIommufd(Process& p, int cdevFd) const;

  int container() const { return container_; }  // /dev/vfio/vfio, or -1
  int iommufd() const { return iommufd_; }      // /dev/iommu, or -1
  // IOMMU group id -> group fd.
  const std::map<uint32_t, int>& groupFds() const { return groupFds_; }
  // Device fds opened via cdev, in order.
  const std::vector<int>& cdevFds() const { return cdevFds_; }

 private:
  int container_ = -1;
  int iommufd_ = -1;
  std::map<uint32_t, int> groupFds_;
  std::vector<int> cdevFds_;
};

// COMMAND.MEMORY on or off, read-modify-write through the config region:
// 2 (the bytes written) or the failing pread/pwrite's negative errno.
long setMemoryDecode(Process& p, int deviceFd, bool on);

// mmap of `length` bytes of BAR `bar` from `offset` on, shared, at
// `where`; with an alignment, as QEMU 9.2: a PROT_NONE reservation of
// length + align, rounded up, the slack unmapped, the BAR mapped over the
// aligned start. The address, or which mmap failed ("reserve" or "map").
VmmResult<uint64_t> mapBar(Process& p, int deviceFd, unsigned bar, uint64_t offset, uint64_t length,
                           int prot, const BarPlacement& where);
// Guest RAM as QEMU allocates it: private anonymous memory of `length`
// bytes, placed as mapBar() places a BAR.
VmmResult<uint64_t> mapAnonymous(Process& p, uint64_t length, int prot, const BarPlacement& where);

}  // namespace vfiomm::sim
