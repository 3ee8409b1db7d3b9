// The "vfio" pseudo filesystem (vfio-bar-mapping.md §13): mounted on first
// use and released with its last user (simple_pin_fs / simple_release_fs),
// it hands out one anonymous inode per vfio device, whose address space is
// what every file of that device maps.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "base/result.h"
#include "fs/inode.h"

namespace vfiomm {

// One per kernel (Kernel::vfioFs()).
class VfioFs {
 public:
  static constexpr uint32_t kMagic = 0x5646494f;  // "VFIO"

  // vfio_init_device(): pin the fs and allocate an anonymous inode on it.
  Result<std::shared_ptr<Inode>> allocInode();
  // The device's release: iput() and simple_release_fs().
  void releaseInode(std::shared_ptr<Inode>& inode);

  int pinCount() const;
  bool mounted() const;
  // Fault injection: the next allocInode() fails with `e` (alloc_anon_inode).
  void failNextAlloc(Errno e);

 private:
  mutable std::mutex mu_;  // the pseudo fs's own bookkeeping; not a modelled lock
  int pins_ = 0;
  uint64_t nextIno_ = 1;
  bool failNext_ = false;
  Errno failWith_ = Errno::kENOMEM;
};

}  // namespace vfiomm
