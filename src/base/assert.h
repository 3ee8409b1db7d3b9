// Model-internal invariants. A failed VFIOMM_ASSERT is a bug in vfiomm (or a
// kernel BUG_ON the model reproduces): it prints and aborts, in every build.
#pragma once

#include "base/source_location.h"

namespace vfiomm {

[[noreturn]] void assertFailed(const char* expr, const char* msg, SourceLocation loc);

}  // namespace vfiomm

#define VFIOMM_ASSERT(cond)                                                        \
  do {                                                                             \
    if (!(cond)) [[unlikely]]                                                      \
      ::vfiomm::assertFailed(#cond, nullptr, ::vfiomm::SourceLocation::current()); \
  } while (0)

#define VFIOMM_ASSERT_MSG(cond, msg)                                             \
  do {                                                                           \
    if (!(cond)) [[unlikely]]                                                    \
      ::vfiomm::assertFailed(#cond, (msg), ::vfiomm::SourceLocation::current()); \
  } while (0)
