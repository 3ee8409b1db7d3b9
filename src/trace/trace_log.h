// TraceLog: what one traced run left in the buffer — its events in time
// order, how many were recorded and dropped under which bound, and the names
// of the simulated processes and threads — ready for a writer. `compare`
// puts every design's TraceLog into one trace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trace/trace_event.h"

namespace vfiomm::trace {

struct TraceLog {
  TraceLog() = default;
  // Events point into `strings`: a copy would point into the original.
  TraceLog(const TraceLog&) = delete;
  TraceLog& operator=(const TraceLog&) = delete;
  TraceLog(TraceLog&&) = default;
  TraceLog& operator=(TraceLog&&) = default;

  std::string title;                                       // the design
  size_t limit = 0;                                        // the buffer's bound, in events
  uint64_t recorded = 0;                                   // events the tracepoints produced
  uint64_t dropped = 0;                                    // of those, overwritten by later ones
  unsigned cpus = 0;                                       // simulated CPUs (one track each)
  std::vector<TraceEvent> events;                          // by start time
  std::map<int, std::string> processNames;                 // pid -> name
  std::map<std::pair<int, int>, std::string> threadNames;  // (pid, tid) -> name
  std::set<std::string, std::less<>> strings;              // what non-literal names view

  // The bound as a sentence for the files' headers.
  std::string policy() const;
  std::string_view intern(std::string_view s) { return *strings.emplace(s).first; }
  // The thread's name, or "<process>-<tid>", or "kernel" for tid 0.
  std::string threadName(int pid, int tid) const;
};

}  // namespace vfiomm::trace
