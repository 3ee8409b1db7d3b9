// UserStruct: the memory accounting that all processes of one user share
// (struct user_struct, kernel/user.c). The model runs every process of a
// kernel as one user. Its locked_vm is what iommufd charges the pins of a
// task without CAP_IPC_LOCK to (IOPT_PAGES_ACCOUNT_USER, the accounting
// io_uring uses too); type1 charges the mm's locked_vm instead
// (Mm::lockedVm()), so the two limits are counted apart, as in Linux.
#pragma once

#include <atomic>
#include <cstdint>

namespace vfiomm {

class UserStruct {
 public:
  UserStruct() = default;
  UserStruct(const UserStruct&) = delete;
  UserStruct& operator=(const UserStruct&) = delete;

  // user->locked_vm, in pages.
  uint64_t lockedVm() const { return lockedVm_.load(std::memory_order_relaxed); }
  // incr_user_locked_vm(): `pages` more, unless the total would pass
  // `limitPages` (RLIMIT_MEMLOCK of the pinning task): then false and
  // nothing charged. One compare-and-swap, so racing pins cannot both fit.
  bool tryChargeLockedVm(uint64_t pages, uint64_t limitPages);
  // decr_user_locked_vm().
  void unchargeLockedVm(uint64_t pages);

 private:
  std::atomic<uint64_t> lockedVm_{0};
};

}  // namespace vfiomm
