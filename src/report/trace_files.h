// The trace files of `run` and `compare` (--trace, --ftrace, --trace-limit;
// docs/trace.md): every design's TraceLog in one Chrome trace and one
// trace-cmd report.
#pragma once

#include <vector>

#include "report/output_file.h"
#include "sim/runner.h"
#include "trace/trace_log.h"

namespace vfiomm::report {

// Writes the results' traces, in order, into the files given (either may be
// null) and commits them. Throws OutputError when a file cannot be written,
// ScenarioError when a result has no trace.
void writeTraceFiles(const std::vector<sim::DesignResult>& results, OutputFile* chrome,
                     OutputFile* ftrace);

}  // namespace vfiomm::report
