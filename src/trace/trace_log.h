// TraceLog: what one traced run left in the buffer — its events in time
// order, how many were recorded and dropped under which bound, and the names
// of the simulated processes and threads — ready for a writer. `compare`
// runs each design in a child process, which hands its TraceLog to the
// parent through a file (writeTraceLog / readTraceLog) so that one trace
// holds them all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <map>
#include <ostream>
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

  std::string title;     // the design
  size_t limit = 0;      // the buffer's bound, in events
  uint64_t recorded = 0; // events the tracepoints produced
  uint64_t dropped = 0;  // of those, overwritten by later ones
  unsigned cpus = 0;     // simulated CPUs (one track each)
  std::vector<TraceEvent> events;  // by start time
  std::map<int, std::string> processNames;                 // pid -> name
  std::map<std::pair<int, int>, std::string> threadNames;  // (pid, tid) -> name
  std::set<std::string, std::less<>> strings;              // what non-literal names view

  // The bound as a sentence for the files' headers.
  std::string policy() const;
  std::string_view intern(std::string_view s) { return *strings.emplace(s).first; }
  // The thread's name, or "<process>-<tid>", or "kernel" for tid 0.
  std::string threadName(int pid, int tid) const;
};

// A JSON header line (bound, names, the string table), then one line of
// integers per event: a million events take seconds as a JSON tree, this
// a fraction of one.
void writeTraceLog(std::ostream& out, const TraceLog& log);
// Throws std::runtime_error on a malformed stream.
TraceLog readTraceLog(std::istream& in);

}  // namespace vfiomm::trace
