#include "base/byte_format.h"

#include <fmt/format.h>

namespace vfiomm {

std::string formatBytes(uint64_t bytes, ByteStyle style) {
  struct Unit {
    unsigned shift;
    const char* suffix;
    const char* iec;
  };
  static constexpr Unit kUnits[] = {
      {40, "T", "TiB"}, {30, "G", "GiB"}, {20, "M", "MiB"}, {10, "K", "KiB"}};
  for (const Unit& u : kUnits) {
    const uint64_t size = uint64_t{1} << u.shift;
    if (bytes == 0 || bytes % size != 0) continue;
    return style == ByteStyle::kSuffix ? fmt::format("{}{}", bytes >> u.shift, u.suffix)
                                       : fmt::format("{} {}", bytes >> u.shift, u.iec);
  }
  return style == ByteStyle::kSuffix ? fmt::format("{}", bytes) : fmt::format("{} B", bytes);
}

}  // namespace vfiomm
