// TraceEvent: one record of the trace buffer, the model's equivalent of an
// ftrace ring-buffer entry. A span (fault, zap, lock acquisition, phase) is
// recorded once, when it ends, with its start and duration: a ring buffer
// that drops the oldest records can then never keep an "end" without its
// "begin", which a Chrome trace would draw as a slice running forever.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vfiomm::trace {

enum class EventKind : uint8_t {
  kPageFault,          // span: do_user_addr_fault (address, write, signal number or 0)
  kHandleMmFault,      // span: handle_mm_fault (address, order tried last, vm_fault_t)
  kPfnInsert,          // instant: a special leaf installed (address, pfn, order 0/9/18)
  kZap,                // span: zap_page_range_single (start, end, entries cleared, flow)
  kUnmapMappingRange,  // span: unmap_mapping_range (holebegin, holeend, entries cleared)
  kTlbFlush,           // span on the flushed CPU (pages, reason, flow of the zap)
  kLockAcquire,        // span: start locking .. acquired (lock address, class name)
  kLockRelease,        // instant (lock address, class name)
  kLockdepReport,      // instant (report kind, first line of the splat)
  kPhase,              // span: a phase of a scenario (its name)
  kDmaMap,  // span: type1 VFIO_IOMMU_MAP_DMA (iova, iova + size, vaddr_get_pfns calls; kFailed)
};
inline constexpr unsigned kEventKinds = 11;

std::string_view eventKindName(EventKind kind);

// x86's enum tlb_flush_reason, with Linux's values.
enum class TlbFlushReason : uint8_t {
  kOnTaskSwitch = 0,
  kRemoteShootdown = 1,
  kLocalShootdown = 2,
  kLocalMmShootdown = 3,
  kRemoteSendIpi = 4,
};

std::string_view tlbFlushReasonName(TlbFlushReason reason);

// vm_fault_t as Linux's VM_FAULT_RESULT_TRACE prints it: "NOPAGE|RETRY",
// "" for 0.
std::string vmFaultResultName(uint64_t result);

namespace eventflag {
inline constexpr uint8_t kWrite = 1u << 0;      // a write fault; a lock taken for write
inline constexpr uint8_t kTry = 1u << 1;        // a trylock
inline constexpr uint8_t kContended = 1u << 2;  // the acquisition had to wait
inline constexpr uint8_t kFullFlush = 1u << 3;  // the whole mm was flushed (pages = -1)
inline constexpr uint8_t kFailed = 1u << 4;     // a trylock that failed
}  // namespace eventflag

// The CPU the recording thread runs on: filled in by Tracer::record().
inline constexpr int16_t kCurrentCpu = -2;
// No simulated CPU.
inline constexpr int16_t kNoCpu = -1;

struct TraceEvent {
  uint64_t ts = 0;     // ns since the trace started
  uint64_t dur = 0;    // ns; 0 for an instant
  uint64_t addr = 0;   // address, range start, lock address
  uint64_t end = 0;    // range end; the PFN of an insert
  uint64_t value = 0;  // vm_fault_t, entries cleared, pages flushed
  uint64_t flow = 0;   // links a zap to the TLB flushes it caused; 0: none
  // Lock class, lockdep report kind, phase name: string literals or strings
  // interned by the Tracer (TraceLog keeps them alive).
  std::string_view name;
  std::string_view detail;
  int32_t pid = 0;  // the simulated process (0: none)
  int32_t tid = 0;  // the simulated thread (0: none)
  int16_t cpu = kCurrentCpu;
  EventKind kind = EventKind::kPageFault;
  uint8_t order = 0;  // page order of a fault or an insert; the TLB flush reason
  uint8_t flags = 0;  // eventflag::
};

}  // namespace vfiomm::trace
