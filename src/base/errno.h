// Linux errno values. Syscall-shaped functions of the model return these,
// never throw them; `-errno` style negatives stay at the uapi boundary.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace vfiomm {

enum class Errno : int {
  kEPERM = 1,
  kENOENT = 2,
  kESRCH = 3,
  kEINTR = 4,
  kEIO = 5,
  kENXIO = 6,
  kE2BIG = 7,
  kEBADF = 9,
  kEAGAIN = 11,
  kENOMEM = 12,
  kEACCES = 13,
  kEFAULT = 14,
  kEBUSY = 16,
  kEEXIST = 17,
  kENODEV = 19,
  kEINVAL = 22,
  kENFILE = 23,
  kEMFILE = 24,
  kENOTTY = 25,
  kEFBIG = 27,
  kENOSPC = 28,
  kESPIPE = 29,
  kERANGE = 34,
  kENOSYS = 38,
  kEOVERFLOW = 75,
  kEBADFD = 77,
  kEOPNOTSUPP = 95,
  kETIMEDOUT = 110,
};

// "EINVAL", as strerrorname_np() prints it; "E?<n>" for a value not listed.
std::string_view errnoName(Errno e);

constexpr int toInt(Errno e) { return static_cast<int>(e); }

}  // namespace vfiomm

template <>
struct fmt::formatter<vfiomm::Errno> : fmt::formatter<std::string_view> {
  auto format(vfiomm::Errno e, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(vfiomm::errnoName(e), ctx);
  }
};
