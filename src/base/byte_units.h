// Binary byte units, so that a size reads as it is written in the kernel's
// documentation and in the scenarios: 32 * kGiB, 64 * kKiB.
#pragma once

#include <cstdint>

namespace vfiomm {

inline constexpr uint64_t kKiB = uint64_t{1} << 10;
inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kGiB = uint64_t{1} << 30;

}  // namespace vfiomm
