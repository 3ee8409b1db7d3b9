#include "sync/lock_class.h"

#include <atomic>

#include "base/assert.h"

namespace vfiomm {
namespace {

// Constant-initialised, so classes declared at namespace scope in any
// translation unit may be constructed during static initialisation.
std::atomic<uint32_t> nextLockClassId{0};

}  // namespace

LockClass::LockClass(std::string_view name)
    : name_(name), id_(nextLockClassId.fetch_add(1, std::memory_order_relaxed)) {
  VFIOMM_ASSERT_MSG(id_ < kMaxClasses, "more lock classes than LockClass::kMaxClasses");
}

}  // namespace vfiomm
