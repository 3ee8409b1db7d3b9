#include "fs/vfio_fs.h"

#include "base/assert.h"

namespace vfiomm {

Result<std::shared_ptr<Inode>> VfioFs::allocInode() {
  std::lock_guard lock(mu_);
  ++pins_;  // simple_pin_fs(): mounts on the first pin
  if (failNext_) {
    failNext_ = false;
    --pins_;  // the allocation failed: release the pin again
    return fail(failWith_);
  }
  return std::make_shared<Inode>(nextIno_++);
}

void VfioFs::releaseInode(std::shared_ptr<Inode>& inode) {
  std::lock_guard lock(mu_);
  VFIOMM_ASSERT(inode != nullptr && pins_ > 0);
  inode.reset();
  --pins_;
}

int VfioFs::pinCount() const {
  std::lock_guard lock(mu_);
  return pins_;
}

bool VfioFs::mounted() const { return pinCount() > 0; }

void VfioFs::failNextAlloc(Errno e) {
  std::lock_guard lock(mu_);
  failNext_ = true;
  failWith_ = e;
}

}  // namespace vfiomm
