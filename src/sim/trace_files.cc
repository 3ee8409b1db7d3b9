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

namespace {

std::ofstream openForWrite(const std::string& path, std::string_view what) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw ScenarioError(fmt::format("vfiomm: cannot write the {} {}: {}", what, path, std::strerror(errno)));
  return out;
}

template <typename Write>
void writeFile(const std::string& path, std::string_view what, Write&& write) {
  if (path.empty()) return;
  std::ofstream out = openForWrite(path, what);
  write(out);
  out.close();
  if (!out) throw ScenarioError(fmt::format("vfiomm: writing the {} {} failed", what, path));
}

}  // namespace

void checkTraceFiles(const RunOptions& options) {
  if (!options.traceChromePath.empty()) openForWrite(options.traceChromePath, "trace");
  if (!options.traceFtracePath.empty()) openForWrite(options.traceFtracePath, "ftrace");
}

void writeTraceFiles(const RunOptions& options, const std::vector<DesignResult>& results) {
  if (options.traceChromePath.empty() && options.traceFtracePath.empty()) return;
  std::vector<const trace::TraceLog*> logs;
  for (const DesignResult& r : results) {
    if (!r.trace) throw ScenarioError(fmt::format("vfiomm: the run of {} left no trace", designName(r.design)));
    logs.push_back(r.trace.get());
  }
  writeFile(options.traceChromePath, "trace", [&](std::ostream& out) { trace::writeChromeTrace(out, logs); });
  writeFile(options.traceFtracePath, "ftrace", [&](std::ostream& out) { trace::writeFtrace(out, logs); });
}

std::string childTracePath(pid_t parent, size_t index) {
  return (std::filesystem::temp_directory_path() / fmt::format("vfiomm-trace-{}-{}.log", parent, index)).string();
}

void saveChildTrace(const trace::TraceLog& log, pid_t parent, size_t index) {
  const std::string path = childTracePath(parent, index);
  std::ofstream out(path, std::ios::trunc);
  trace::writeTraceLog(out, log);
  out.close();
  if (!out) throw std::runtime_error(fmt::format("cannot write the trace hand-over file {}", path));
}

std::shared_ptr<trace::TraceLog> takeChildTrace(pid_t parent, size_t index) {
  const std::string path = childTracePath(parent, index);
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("the trace hand-over file {} is missing", path));
  auto log = std::make_shared<trace::TraceLog>(trace::readTraceLog(in));
  in.close();
  std::remove(path.c_str());
  return log;
}

}  // namespace vfiomm::sim
