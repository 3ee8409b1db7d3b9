#include "sim/trace_files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "sim/scenario.h"
#include "trace/chrome_trace_writer.h"
#include "trace/ftrace_writer.h"

namespace vfiomm::sim {

void writeTraceFiles(const std::vector<DesignResult>& results, OutputFile* chrome, OutputFile* ftrace) {
  if (chrome == nullptr && ftrace == nullptr) return;
  std::vector<const trace::TraceLog*> logs;
  for (const DesignResult& r : results) {
    if (!r.trace) throw ScenarioError(fmt::format("vfiomm: the run of {} left no trace", designName(r.design)));
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

std::string childTracePath(pid_t parent, size_t index) {
  return (std::filesystem::temp_directory_path() / fmt::format("vfiomm-trace-{}-{}.log", parent, index)).string();
}

void saveChildTrace(const trace::TraceLog& log, pid_t parent, size_t index) {
  const std::string path = childTracePath(parent, index);
  std::ofstream out(path, std::ios::trunc);
  trace::writeTraceLog(out, log);
  out.close();
  if (!out)
    throw OutputError(fmt::format("vfiomm: cannot write the trace hand-over file {} (TMPDIR)", path));
}

ChildTraceHandover::ChildTraceHandover(pid_t parent, size_t children) {
  try {
    for (size_t i = 0; i < children; ++i) paths_.push_back(childTracePath(parent, i));
  } catch (const std::filesystem::filesystem_error& e) {
    throw OutputError(fmt::format("vfiomm: no directory for the trace hand-over files (TMPDIR): {}", e.what()));
  }
  for (const std::string& p : paths_) removeOnInterrupt_.push_back(std::make_unique<RemoveOnInterrupt>(p));
}

ChildTraceHandover::~ChildTraceHandover() {
  for (const std::string& p : paths_) std::remove(p.c_str());
}

std::shared_ptr<trace::TraceLog> ChildTraceHandover::take(size_t index) {
  const std::string& path = paths_.at(index);
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("the trace hand-over file {} is missing", path));
  auto log = std::make_shared<trace::TraceLog>(trace::readTraceLog(in));
  in.close();
  std::remove(path.c_str());
  return log;
}

}  // namespace vfiomm::sim
