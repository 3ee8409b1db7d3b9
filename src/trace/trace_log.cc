#include "trace/trace_log.h"

#include <fmt/format.h>

namespace vfiomm::trace {

std::string TraceLog::policy() const {
  return fmt::format("ring buffer of {} events keeping the latest; {} recorded, {} dropped", limit,
                     recorded, dropped);
}

std::string TraceLog::threadName(int pid, int tid) const {
  if (auto it = threadNames.find({pid, tid}); it != threadNames.end()) return it->second;
  if (tid == 0) return "kernel";
  if (auto it = processNames.find(pid); it != processNames.end())
    return fmt::format("{}-{}", it->second, tid);
  return fmt::format("task-{}", tid);
}

}  // namespace vfiomm::trace
