// The trace files of `run` and `compare` (--trace, --ftrace, --trace-limit;
// docs/trace.md): every design's TraceLog in one Chrome trace and one
// trace-cmd report, and the hand-over of a TraceLog from the child process
// that ran a design to the parent that writes the files.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "sim/interrupt.h"
#include "sim/output_file.h"
#include "sim/runner.h"
#include "trace/trace_log.h"
#include "trace/tracer.h"

namespace vfiomm::sim {

// Writes the results' traces, in order, into the files given (either may be
// null) and commits them. Throws OutputError when a file cannot be written,
// ScenarioError when a result has no trace.
void writeTraceFiles(const std::vector<DesignResult>& results, OutputFile* chrome, OutputFile* ftrace);

// Where the child running design `index` for parent `parent` leaves its trace.
std::string childTracePath(pid_t parent, size_t index);
// In the child: writes it there. Throws OutputError.
void saveChildTrace(const trace::TraceLog& log, pid_t parent, size_t index);

// In the parent, for the children of one runInChildren: every hand-over
// file is removed when this goes (also when a child failed) or when a
// signal interrupts the run.
class ChildTraceHandover {
 public:
  ChildTraceHandover(pid_t parent, size_t children);
  ~ChildTraceHandover();
  ChildTraceHandover(const ChildTraceHandover&) = delete;
  ChildTraceHandover& operator=(const ChildTraceHandover&) = delete;

  // Reads child `index`'s trace and removes the file. Throws std::runtime_error.
  std::shared_ptr<trace::TraceLog> take(size_t index);

 private:
  std::vector<std::string> paths_;
  std::vector<std::unique_ptr<RemoveOnInterrupt>> removeOnInterrupt_;
};

}  // namespace vfiomm::sim
