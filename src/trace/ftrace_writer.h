// FtraceWriter: TraceLogs as the text `trace-cmd report` prints, one line per
// event (a span gives an entry and an exit line), with the event names and
// field layout of the Linux tracepoints each mirrors (docs/trace.md). Every
// design is a section opening with comment lines that name it and state the
// buffer's bound and drop count.
#pragma once

#include <ostream>
#include <vector>

#include "trace/trace_log.h"

namespace vfiomm::trace {

void writeFtrace(std::ostream& out, const std::vector<const TraceLog*>& logs);

}  // namespace vfiomm::trace
