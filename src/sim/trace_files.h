// The trace files of `run` and `compare` (--trace, --ftrace, --trace-limit;
// docs/trace.md): every design's TraceLog in one Chrome trace and one
// trace-cmd report, and the hand-over of a TraceLog from the child process
// that ran a design to the parent that writes the files.
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include "sim/runner.h"
#include "trace/trace_log.h"
#include "trace/tracer.h"

namespace vfiomm::sim {

// Creates (empties) the files the options name, so that a path that cannot
// be written fails before minutes of simulation. Throws ScenarioError.
void checkTraceFiles(const RunOptions& options);

// Writes the files the options name from the results' traces, in order.
// Throws ScenarioError when a file cannot be written or a result has no trace.
void writeTraceFiles(const RunOptions& options, const std::vector<DesignResult>& results);

// Where the child running design `index` for parent `parent` leaves its trace.
std::string childTracePath(pid_t parent, size_t index);
// In the child: writes it there.
void saveChildTrace(const trace::TraceLog& log, pid_t parent, size_t index);
// In the parent: reads it and removes the file. Throws std::runtime_error.
std::shared_ptr<trace::TraceLog> takeChildTrace(pid_t parent, size_t index);

}  // namespace vfiomm::sim
