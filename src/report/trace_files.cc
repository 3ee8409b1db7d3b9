#include "report/trace_files.h"

#include <fmt/format.h>

#include "sim/scenario.h"
#include "trace/chrome_trace_writer.h"
#include "trace/ftrace_writer.h"

namespace vfiomm::report {

using sim::DesignResult;
using sim::ScenarioError;

void writeTraceFiles(const std::vector<DesignResult>& results, OutputFile* chrome,
                     OutputFile* ftrace) {
  if (chrome == nullptr && ftrace == nullptr) return;
  std::vector<const trace::TraceLog*> logs;
  for (const DesignResult& r : results) {
    if (!r.trace)
      throw ScenarioError(fmt::format("vfiomm: the run of {} left no trace", designName(r.design)));
    logs.push_back(r.trace.get());
  }
  if (chrome != nullptr) {
    trace::writeChromeTrace(chrome->stream(), logs);
    chrome->commit();
  }
  if (ftrace != nullptr) {
    trace::writeFtrace(ftrace->stream(), logs);
    ftrace->commit();
  }
}

}  // namespace vfiomm::report
