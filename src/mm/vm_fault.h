// struct vm_fault and vm_fault_t (mm-pfnmap.md §9.4).
#pragma once

#include <cstdint>

#include "base/addr.h"

namespace vfiomm {

class Vma;
struct Task;

// vm_fault_t: bit flags with Linux's values.
using VmFaultResult = uint32_t;
namespace vmfault {
inline constexpr VmFaultResult kNone = 0;
inline constexpr VmFaultResult kOom = 0x000001;
inline constexpr VmFaultResult kSigbus = 0x000002;
inline constexpr VmFaultResult kMajor = 0x000004;
inline constexpr VmFaultResult kHwpoison = 0x000010;
inline constexpr VmFaultResult kHwpoisonLarge = 0x000020;
inline constexpr VmFaultResult kSigsegv = 0x000040;
inline constexpr VmFaultResult kNoPage = 0x000100;
inline constexpr VmFaultResult kLocked = 0x000200;
inline constexpr VmFaultResult kRetry = 0x000400;
inline constexpr VmFaultResult kFallback = 0x000800;
inline constexpr VmFaultResult kDoneCow = 0x001000;
inline constexpr VmFaultResult kNeedDsync = 0x002000;
inline constexpr VmFaultResult kCompleted = 0x004000;
// VM_FAULT_ERROR includes FALLBACK: "ret & VM_FAULT_ERROR" is true for it.
inline constexpr VmFaultResult kError =
    kOom | kSigbus | kSigsegv | kHwpoison | kHwpoisonLarge | kFallback;
}  // namespace vmfault

// enum fault_flag.
using FaultFlags = uint32_t;
namespace faultflag {
inline constexpr FaultFlags kWrite = 1U << 0;
inline constexpr FaultFlags kMkwrite = 1U << 1;
inline constexpr FaultFlags kAllowRetry = 1U << 2;
inline constexpr FaultFlags kRetryNowait = 1U << 3;
inline constexpr FaultFlags kKillable = 1U << 4;
inline constexpr FaultFlags kTried = 1U << 5;
inline constexpr FaultFlags kUser = 1U << 6;
inline constexpr FaultFlags kRemote = 1U << 7;
inline constexpr FaultFlags kInstruction = 1U << 8;
inline constexpr FaultFlags kInterruptible = 1U << 9;
inline constexpr FaultFlags kVmaLock = 1U << 12;
}  // namespace faultflag

struct VmFault {
  Vma* vma = nullptr;
  VirtAddr address;      // faulting address rounded down to 4 KiB
  VirtAddr realAddress;  // the exact address
  PgOff pgoff;           // linear_page_index(vma, address)
  FaultFlags flags = 0;
};

}  // namespace vfiomm
