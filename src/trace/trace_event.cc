#include "trace/trace_event.h"

#include <array>
#include <string>
#include <utility>

namespace vfiomm::trace {

std::string_view eventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kPageFault: return "page_fault_user";
    case EventKind::kHandleMmFault: return "handle_mm_fault";
    case EventKind::kPfnInsert: return "vmf_insert_pfn";
    case EventKind::kZap: return "zap_page_range_single";
    case EventKind::kUnmapMappingRange: return "unmap_mapping_range";
    case EventKind::kTlbFlush: return "tlb_flush";
    case EventKind::kLockAcquire: return "lock_acquire";
    case EventKind::kLockRelease: return "lock_release";
    case EventKind::kLockdepReport: return "lockdep";
    case EventKind::kPhase: return "phase";
    case EventKind::kDmaMap: return "vfio_iommu_type1_map_dma";
  }
  return "unknown";
}

std::string_view tlbFlushReasonName(TlbFlushReason reason) {
  switch (reason) {
    case TlbFlushReason::kOnTaskSwitch: return "flush on task switch";
    case TlbFlushReason::kRemoteShootdown: return "remote shootdown";
    case TlbFlushReason::kLocalShootdown: return "local shootdown";
    case TlbFlushReason::kLocalMmShootdown: return "local mm shootdown";
    case TlbFlushReason::kRemoteSendIpi: return "remote ipi send";
  }
  return "unknown";
}

std::string vmFaultResultName(uint64_t result) {
  // include/linux/mm_types.h, VM_FAULT_RESULT_TRACE.
  static constexpr std::array<std::pair<uint64_t, const char*>, 13> kNames{{
      {0x000001, "OOM"},
      {0x000002, "SIGBUS"},
      {0x000004, "MAJOR"},
      {0x000010, "HWPOISON"},
      {0x000020, "HWPOISON_LARGE"},
      {0x000040, "SIGSEGV"},
      {0x000100, "NOPAGE"},
      {0x000200, "LOCKED"},
      {0x000400, "RETRY"},
      {0x000800, "FALLBACK"},
      {0x001000, "DONE_COW"},
      {0x002000, "NEEDDSYNC"},
      {0x004000, "COMPLETED"},
  }};
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if ((result & bit) == 0) continue;
    if (!out.empty()) out += '|';
    out += name;
  }
  return out;
}

}  // namespace vfiomm::trace
