#include "trace/chrome_trace_writer.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>

namespace vfiomm::trace {

namespace {

// Chrome trace pids and tids are one namespace per file; a design's
// processes, threads and CPUs get ids in a block of their own so that
// designs never share a track.
constexpr int kDesignBlock = 100000;
constexpr int kCpuProcess = kDesignBlock - 1;
constexpr int kCpuTidBase = kDesignBlock - 1000;

std::string jsonString(std::string_view s) { return nlohmann::json(std::string(s)).dump(); }

// Chrome timestamps are µs; keep the model's ns as three decimals.
std::string micros(uint64_t ns) { return fmt::format("{}.{:03}", ns / 1000, ns % 1000); }

std::string hex(uint64_t v) { return jsonString(fmt::format("{:#x}", v)); }

class Writer {
 public:
  explicit Writer(std::ostream& out) : out_(out) {}

  void design(const TraceLog& log, int index);
  void close(const std::vector<const TraceLog*>& logs);

 private:
  void emit(const std::string& event) {
    out_ << (first_ ? "\n" : ",\n") << event;
    first_ = false;
  }
  void metadata(int pid, int tid, std::string_view what, std::string_view name) {
    emit(fmt::format(R"({{"ph":"M","pid":{},"tid":{},"name":"{}","args":{{"name":{}}}}})", pid, tid,
                     what, jsonString(name)));
  }
  void slice(const TraceEvent& e, int pid, int tid, std::string_view name, std::string_view cat,
             const std::string& args) {
    emit(fmt::format(
        R"({{"ph":"X","pid":{},"tid":{},"ts":{},"dur":{},"name":{},"cat":"{}","args":{{{}}}}})",
        pid, tid, micros(e.ts), micros(e.dur), jsonString(name), cat, args));
  }
  void instant(const TraceEvent& e, int pid, int tid, std::string_view name, std::string_view cat,
               const std::string& args) {
    emit(fmt::format(
        R"({{"ph":"i","s":"t","pid":{},"tid":{},"ts":{},"name":{},"cat":"{}","args":{{{}}}}})", pid,
        tid, micros(e.ts), jsonString(name), cat, args));
  }
  void event(const TraceEvent& e, int pid, int tid, int cpuPid, int cpuTid);

  std::ostream& out_;
  bool first_ = true;
  uint64_t nextFlow_ = 1;
};

std::string_view insertName(uint8_t order) {
  if (order == 18) return "vmf_insert_pfn_pud";
  if (order == 9) return "vmf_insert_pfn_pmd";
  return "vmf_insert_pfn";
}

void Writer::event(const TraceEvent& e, int pid, int tid, int cpuPid, int cpuTid) {
  const bool write = (e.flags & eventflag::kWrite) != 0;
  switch (e.kind) {
    case EventKind::kPageFault:
      slice(e, pid, tid, "page_fault_user", "fault",
            fmt::format(R"("address":{},"write":{},"cpu":{},"signal":{})", hex(e.addr), write,
                        e.cpu, e.value));
      return;
    case EventKind::kHandleMmFault:
      slice(e, pid, tid, fmt::format("handle_mm_fault order {}", e.order), "fault",
            fmt::format(R"("address":{},"order":{},"result":{})", hex(e.addr), e.order,
                        jsonString(vmFaultResultName(e.value))));
      return;
    case EventKind::kPfnInsert:
      instant(e, pid, tid, insertName(e.order), "insert",
              fmt::format(R"("address":{},"pfn":{})", hex(e.addr), hex(e.end)));
      return;
    case EventKind::kZap:
    case EventKind::kUnmapMappingRange:
      slice(e, pid, tid, eventKindName(e.kind), "zap",
            fmt::format(R"("start":{},"end":{},"entries":{})", hex(e.addr), hex(e.end), e.value));
      return;
    case EventKind::kTlbFlush: {
      const auto reason = static_cast<TlbFlushReason>(e.order);
      const bool full = (e.flags & eventflag::kFullFlush) != 0;
      slice(e, cpuPid, cpuTid, "tlb_flush", "tlb",
            fmt::format(R"("pages":{},"reason":{},"by_tid":{})",
                        full ? -1 : static_cast<int64_t>(e.value),
                        jsonString(tlbFlushReasonName(reason)), e.tid));
      if (e.flow == 0) return;
      // One arrow per flush: a Chrome flow id has one start and one end.
      const uint64_t id = nextFlow_++;
      emit(fmt::format(
          R"({{"ph":"s","id":{},"pid":{},"tid":{},"ts":{},"name":"shootdown","cat":"tlb"}})", id,
          pid, tid, micros(e.ts)));
      emit(fmt::format(
          R"({{"ph":"f","bp":"e","id":{},"pid":{},"tid":{},"ts":{},"name":"shootdown","cat":"tlb"}})",
          id, cpuPid, cpuTid, micros(e.ts)));
      return;
    }
    case EventKind::kLockAcquire:
      // Uncontended acquisitions are only in the ftrace output: as slices
      // they would bury the faults.
      if ((e.flags & eventflag::kContended) == 0) return;
      slice(e, pid, tid, fmt::format("lock wait {}", e.name), "lock",
            fmt::format(R"("lock":{},"write":{})", jsonString(e.name), write));
      return;
    case EventKind::kLockRelease: return;
    case EventKind::kLockdepReport:
      instant(e, pid, tid, fmt::format("lockdep: {}", e.name), "lockdep",
              fmt::format(R"("report":{})", jsonString(e.detail)));
      return;
    case EventKind::kPhase:
      slice(e, pid, tid, fmt::format("phase {}", e.detail), "phase", "");
      return;
    case EventKind::kDmaMap:
      slice(e, pid, tid, fmt::format("MAP_DMA {} lookups", e.value), "dma",
            fmt::format(R"("iova":{},"end":{},"lookups":{},"failed":{})", hex(e.addr), hex(e.end),
                        e.value, (e.flags & eventflag::kFailed) != 0));
      return;
  }
}

void Writer::design(const TraceLog& log, int index) {
  const int base = kDesignBlock * (index + 1);
  const int cpuPid = base + kCpuProcess;
  std::set<int> pids{0};
  std::set<std::pair<int, int>> threads{{0, 0}};
  for (const auto& [pid, name] : log.processNames) pids.insert(pid);
  for (const auto& [key, name] : log.threadNames) threads.insert(key);
  for (const TraceEvent& e : log.events) {
    pids.insert(e.pid);
    threads.insert({e.pid, e.tid});
  }
  for (int pid : pids) {
    auto it = log.processNames.find(pid);
    const std::string name = it != log.processNames.end()
                                 ? it->second
                                 : (pid == 0 ? "kernel" : fmt::format("pid {}", pid));
    metadata(base + pid, 0, "process_name", fmt::format("{}: {}", log.title, name));
  }
  for (const auto& [pid, tid] : threads)
    metadata(base + pid, base + tid, "thread_name", log.threadName(pid, tid));
  metadata(cpuPid, 0, "process_name", fmt::format("{}: CPUs", log.title));
  for (unsigned c = 0; c < log.cpus; ++c)
    metadata(cpuPid, base + kCpuTidBase + static_cast<int>(c), "thread_name",
             fmt::format("CPU {}", c));
  for (const TraceEvent& e : log.events) {
    const int cpuTid = base + kCpuTidBase + (e.cpu < 0 ? static_cast<int>(log.cpus) : e.cpu);
    event(e, base + e.pid, base + e.tid, cpuPid, cpuTid);
  }
}

void Writer::close(const std::vector<const TraceLog*>& logs) {
  nlohmann::json buffers = nlohmann::json::array();
  for (const TraceLog* log : logs)
    buffers.push_back({{"design", log->title},
                       {"policy", log->policy()},
                       {"limit", log->limit},
                       {"recorded", log->recorded},
                       {"dropped", log->dropped}});
  out_ << "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":"
       << nlohmann::json{{"generator", "vfiomm"}, {"buffers", buffers}}.dump() << "\n}\n";
}

}  // namespace

void writeChromeTrace(std::ostream& out, const std::vector<const TraceLog*>& logs) {
  out << "{\"traceEvents\":[";
  Writer w(out);
  for (size_t i = 0; i < logs.size(); ++i) w.design(*logs[i], static_cast<int>(i));
  w.close(logs);
}

}  // namespace vfiomm::trace
