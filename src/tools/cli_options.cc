#include "tools/cli_options.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "trace/tracer.h"

namespace vfiomm::tools {

std::vector<DesignKind> parseDesigns(const std::vector<std::string>& names) {
  if (names.empty()) return allDesigns();
  std::vector<DesignKind> out;
  for (const std::string& n : names) {
    auto d = designByName(n);
    if (!d) {
      std::string known;
      for (DesignKind k : allDesigns())
        known += fmt::format("{}{}", known.empty() ? "" : ", ", designName(k));
      throw sim::ScenarioError(fmt::format("unknown design '{}' (known: {})", n, known));
    }
    out.push_back(*d);
  }
  return out;
}

void TraceOptions::add(CLI::App& cmd) {
  limit = trace::Tracer::kDefaultLimit;
  cmd.add_option("--trace", chromePath,
                 "also write a Chrome trace-event JSON (open in ui.perfetto.dev)");
  cmd.add_option("--ftrace", ftracePath, "also write the trace as `trace-cmd report` text");
  cmd.add_option("--trace-limit", limit,
                 "events a trace keeps per design, the latest (default 1000000)")
      ->check(CLI::Validator(
          [](const std::string& v) {
            return v.find_first_not_of("0123456789") == std::string::npos &&
                           v.find_first_not_of('0') != std::string::npos
                       ? std::string()
                       : "a trace keeps at least 1 event: give a positive whole number, not '" + v +
                             "'";
          },
          "N >= 1"));
}

void TraceOptions::applyTo(sim::RunOptions& options) const {
  options.traceChromePath = chromePath;
  options.traceFtracePath = ftracePath;
  options.traceLimit = chromePath.empty() && ftracePath.empty() ? 0 : limit;
}

sim::Scenario loadScenarioOrDefault(const std::string& path) {
  return path.empty() ? sim::defaultScenario() : sim::loadScenario(path);
}

std::unique_ptr<report::OutputFile> openOutput(const std::string& path, const char* what) {
  return path.empty() ? nullptr : std::make_unique<report::OutputFile>(path, what);
}

unsigned defaultJobs() { return std::max(1U, std::thread::hardware_concurrency()); }

}  // namespace vfiomm::tools
