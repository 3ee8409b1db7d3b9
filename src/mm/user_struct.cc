#include "mm/user_struct.h"

#include "base/assert.h"

namespace vfiomm {

bool UserStruct::tryChargeLockedVm(uint64_t pages, uint64_t limitPages) {
  uint64_t cur = lockedVm_.load(std::memory_order_relaxed);
  do {
    if (pages > limitPages || cur > limitPages - pages) return false;
  } while (!lockedVm_.compare_exchange_weak(cur, cur + pages, std::memory_order_relaxed));
  return true;
}

void UserStruct::unchargeLockedVm(uint64_t pages) {
  // The kernel WARNs and leaves the count alone; here it is a model bug.
  VFIOMM_ASSERT_MSG(lockedVm() >= pages, "user locked_vm uncharged below zero");
  lockedVm_.fetch_sub(pages, std::memory_order_relaxed);
}

}  // namespace vfiomm
