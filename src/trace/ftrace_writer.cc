#include "trace/ftrace_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>

namespace vfiomm::trace {

namespace {

// The class the mmap_lock tracepoints are about (mm/mm.h names it so).
constexpr std::string_view kMmapLockClass = "&mm->mmap_lock";

// x86 page-fault error code bits (arch/x86/include/asm/trap_pf.h).
constexpr uint64_t kPfWrite = 1u << 1;
constexpr uint64_t kPfUser = 1u << 2;

struct Line {
  uint64_t ts;
  std::string text;  // "event: fields"
};

std::string_view insertName(uint8_t order) {
  if (order == 18) return "vmf_insert_pfn_pud";
  if (order == 9) return "vmf_insert_pfn_pmd";
  return "vmf_insert_pfn";
}

std::string_view boolName(bool b) { return b ? "true" : "false"; }

// The lock tracepoints: mmap_lock's own for the mmap lock, lockdep's
// lock_acquire/lock_contended/lock_acquired/lock_release (CONFIG_LOCK_STAT)
// for the others.
void lockLines(const TraceEvent& e, std::vector<Line>& out) {
  const bool write = (e.flags & eventflag::kWrite) != 0;
  const bool mmap = e.name == kMmapLockClass;
  if (e.kind == EventKind::kLockRelease) {
    out.push_back({e.ts, mmap ? fmt::format("mmap_lock_released: mm={:#x} memcg_path= write={}",
                                            e.addr, boolName(write))
                              : fmt::format("lock_release: {:#x} {}", e.addr, e.name)});
    return;
  }
  const bool failed = (e.flags & eventflag::kFailed) != 0;
  if (mmap) {
    out.push_back({e.ts, fmt::format("mmap_lock_start_locking: mm={:#x} memcg_path= write={}",
                                     e.addr, boolName(write))});
    out.push_back(
        {e.ts + e.dur,
         fmt::format("mmap_lock_acquire_returned: mm={:#x} memcg_path= write={} success={}", e.addr,
                     boolName(write), boolName(!failed))});
    return;
  }
  out.push_back(
      {e.ts, fmt::format("lock_acquire: {:#x} {}{}{}", e.addr,
                         (e.flags & eventflag::kTry) ? "try " : "", write ? "" : "read ", e.name)});
  if (e.flags & eventflag::kContended) {
    out.push_back({e.ts, fmt::format("lock_contended: {:#x} {}", e.addr, e.name)});
    out.push_back({e.ts + e.dur, fmt::format("lock_acquired: {:#x} {}", e.addr, e.name)});
  }
}

void linesOf(const TraceEvent& e, std::vector<Line>& out) {
  const bool write = (e.flags & eventflag::kWrite) != 0;
  switch (e.kind) {
    case EventKind::kPageFault:
      out.push_back({e.ts, fmt::format("page_fault_user: address={:#x} ip=0x0 error_code={:#x}",
                                       e.addr, kPfUser | (write ? kPfWrite : 0))});
      return;
    case EventKind::kHandleMmFault:
      out.push_back(
          {e.ts, fmt::format("handle_mm_fault: address={:#x} write={}", e.addr, write ? 1 : 0)});
      out.push_back(
          {e.ts + e.dur, fmt::format("handle_mm_fault_done: address={:#x} order={} result={}",
                                     e.addr, e.order, vmFaultResultName(e.value))});
      return;
    case EventKind::kPfnInsert:
      out.push_back(
          {e.ts, fmt::format("{}: address={:#x} pfn={:#x}", insertName(e.order), e.addr, e.end)});
      return;
    case EventKind::kZap:
      out.push_back(
          {e.ts, fmt::format("zap_page_range_single: start={:#x} end={:#x}", e.addr, e.end)});
      out.push_back(
          {e.ts + e.dur, fmt::format("zap_page_range_single_done: start={:#x} end={:#x} entries={}",
                                     e.addr, e.end, e.value)});
      return;
    case EventKind::kUnmapMappingRange:
      out.push_back(
          {e.ts, fmt::format("unmap_mapping_range: holebegin={:#x} holeend={:#x}", e.addr, e.end)});
      out.push_back(
          {e.ts + e.dur,
           fmt::format("unmap_mapping_range_done: holebegin={:#x} holeend={:#x} entries={}", e.addr,
                       e.end, e.value)});
      return;
    case EventKind::kTlbFlush: {
      const auto reason = static_cast<TlbFlushReason>(e.order);
      const int64_t pages = (e.flags & eventflag::kFullFlush) ? -1 : static_cast<int64_t>(e.value);
      out.push_back({e.ts, fmt::format("tlb_flush: pages:{} reason:{} ({})", pages,
                                       tlbFlushReasonName(reason), static_cast<int>(reason))});
      return;
    }
    case EventKind::kLockAcquire:
    case EventKind::kLockRelease: lockLines(e, out); return;
    case EventKind::kLockdepReport:
      out.push_back({e.ts, fmt::format("console: lockdep {}: {}", e.name, e.detail)});
      return;
    case EventKind::kPhase:
      out.push_back({e.ts, fmt::format("tracing_mark_write: phase_begin: {}", e.detail)});
      out.push_back({e.ts + e.dur, fmt::format("tracing_mark_write: phase_end: {}", e.detail)});
      return;
    case EventKind::kDmaMap:
      out.push_back(
          {e.ts, fmt::format("vfio_iommu_type1_map_dma: iova={:#x} end={:#x}", e.addr, e.end)});
      out.push_back({e.ts + e.dur,
                     fmt::format("vfio_iommu_type1_map_dma_done: iova={:#x} end={:#x} lookups={} "
                                 "ret={}",
                                 e.addr, e.end, e.value,
                                 (e.flags & eventflag::kFailed) != 0 ? "error" : "0")});
      return;
  }
}

// trace-cmd's comm column: TASK_COMM_LEN - 1 characters, no blanks.
std::string comm(const TraceLog& log, const TraceEvent& e) {
  std::string c = log.threadName(e.pid, e.tid).substr(0, 15);
  std::replace(c.begin(), c.end(), ' ', '_');
  return c;
}

void section(std::ostream& out, const TraceLog& log) {
  out << fmt::format("# vfiomm trace of design {} (trace-cmd report format)\n", log.title);
  out << fmt::format("# buffer: {}\n", log.policy());
  out << fmt::format("cpus={}\n", log.cpus);
  // Events sorted by start; a span's exit line may come after later starts,
  // so the lines are sorted again, stably (an entry stays before its exit).
  struct Full {
    uint64_t ts;
    const TraceEvent* e;
    std::string text;
  };
  std::vector<Full> lines;
  lines.reserve(log.events.size());
  std::vector<Line> tmp;
  for (const TraceEvent& e : log.events) {
    tmp.clear();
    linesOf(e, tmp);
    for (Line& l : tmp) lines.push_back({l.ts, &e, std::move(l.text)});
  }
  std::stable_sort(lines.begin(), lines.end(),
                   [](const Full& a, const Full& b) { return a.ts < b.ts; });
  for (const Full& l : lines) {
    const std::string cpu = l.e->cpu < 0 ? std::string("---") : fmt::format("{:03}", l.e->cpu);
    out << fmt::format("{:>16}-{:<5} [{}] {:>5}.{:06}: {}\n", comm(log, *l.e), l.e->tid, cpu,
                       l.ts / 1'000'000'000, l.ts / 1000 % 1'000'000, l.text);
  }
}

}  // namespace

void writeFtrace(std::ostream& out, const std::vector<const TraceLog*>& logs) {
  for (size_t i = 0; i < logs.size(); ++i) {
    if (i != 0) out << "\n";
    section(out, *logs[i]);
  }
}

}  // namespace vfiomm::trace
