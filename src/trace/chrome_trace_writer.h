// ChromeTraceWriter: TraceLogs as Chrome trace-event JSON, the format
// ui.perfetto.dev and chrome://tracing open (docs/trace.md).
//
// Every design is a group of processes: one per simulated process (its
// threads are tracks with their faults, zaps and lock waits as slices and
// their PFN inserts and lockdep reports as instants) and one "CPUs" process
// with a track per simulated CPU holding the TLB flushes it did. A flow arrow
// runs from each zap to every flush it caused. The bound of each buffer and
// its drop count are in `otherData`.
//
// The file is streamed: a run of a million events needs no JSON tree of them.
#pragma once

#include <ostream>
#include <vector>

#include "trace/trace_log.h"

namespace vfiomm::trace {

void writeChromeTrace(std::ostream& out, const std::vector<const TraceLog*>& logs);

}  // namespace vfiomm::trace
