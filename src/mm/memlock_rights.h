// MemlockRights: what mmap(MAP_LOCKED) and mlock() ask of current, its
// rlimit(RLIMIT_MEMLOCK) and capable(CAP_IPC_LOCK) (mm/mlock.c). The
// default, no limit, stands for callers that are no process (unit tests
// of the mm alone).
#pragma once

#include <cstdint>

#include "base/page_geometry.h"

namespace vfiomm {

struct MemlockRights {
  uint64_t limitBytes = UINT64_MAX;
  bool capIpcLock = false;

  // can_do_mlock()
  bool canMlock() const { return limitBytes != 0 || capIpcLock; }
  // The limit test of mlock_future_ok() and do_mlock(): `pages` more on
  // top of the mm's `lockedVm`.
  bool allows(uint64_t lockedVm, uint64_t pages) const {
    return capIpcLock || lockedVm + pages <= limitBytes / kPageSize;
  }
};

}  // namespace vfiomm
