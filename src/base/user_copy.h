// copy_from_user() / copy_to_user(): the kernel side reading and writing an
// ioctl's argument in the caller's memory. The model's user memory is the
// caller's own host memory, so the one bad address it can recognise is a
// null pointer: -EFAULT, as Linux answers for an unmapped one.
#pragma once

#include <cstddef>
#include <cstring>

#include "base/result.h"

namespace vfiomm {

inline Status copyFromUser(void* to, const void* from, size_t n) {
  if (n == 0) return ok();
  if (from == nullptr) return fail(Errno::kEFAULT);
  std::memcpy(to, from, n);
  return ok();
}

inline Status copyToUser(void* to, const void* from, size_t n) {
  if (n == 0) return ok();
  if (to == nullptr) return fail(Errno::kEFAULT);
  std::memcpy(to, from, n);
  return ok();
}

}  // namespace vfiomm
