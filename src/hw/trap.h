// What a user access that the MMU refuses raises and gets back: the page
// fault's access type, and the signal its handler delivered (none: the
// handler fixed the translation and the access is retried).
#pragma once

#include <cstdint>

#include "base/addr.h"

namespace vfiomm {

enum class FaultAccess : uint8_t { kRead, kWrite };

// siginfo as the faulting thread receives it; signo 0 = no signal (retry).
struct SigInfo {
  static constexpr int kSigbus = 7;
  static constexpr int kSigsegv = 11;
  static constexpr int kBusAdraln = 1;   // BUS_ADRALN
  static constexpr int kBusAdrerr = 2;   // BUS_ADRERR
  static constexpr int kSegvMaperr = 1;  // SEGV_MAPERR
  static constexpr int kSegvAccerr = 2;  // SEGV_ACCERR

  int signo = 0;
  int code = 0;
  VirtAddr addr;
  bool none() const { return signo == 0; }
};

}  // namespace vfiomm
