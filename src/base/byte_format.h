// How vfiomm prints a byte count: in the largest binary unit that divides it
// exactly, so that nothing is rounded away.
#pragma once

#include <cstdint>
#include <string>

namespace vfiomm {

enum class ByteStyle {
  kSuffix,  // "32G", "64K", "4097": the scenario grammar's sizes, which parse back
  kIec,     // "32 GiB", "64 KiB", "4097 B": the device listing
};

std::string formatBytes(uint64_t bytes, ByteStyle style = ByteStyle::kSuffix);

}  // namespace vfiomm
