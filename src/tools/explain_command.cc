#include "tools/explain_command.h"

#include <fmt/format.h>

#include <memory>

#include "report/explain_report.h"
#include "report/report.h"
#include "sim/explain.h"
#include "tools/cli_options.h"

namespace vfiomm::tools {

namespace {

uint64_t sizeOption(const std::string& opt, const std::string& text) {
  const auto v = sim::parseSize(text);
  if (!v)
    throw sim::ScenarioError(fmt::format(
        "{} '{}': expected a number (4096, 0x1000) with an optional K/M/G/T suffix", opt, text));
  return *v;
}

}  // namespace

ExplainCommand::ExplainCommand(CLI::App& parent)
    : Subcommand(parent, "explain",
                 "what one BAR mapping costs per design, and why huge pages are (not) used "
                 "(docs/explain.md)") {
  CLI::App& cmd = app();
  cmd.add_option("--bar-size", barSize_, "BAR size: 64K, 2M, 1G, 0x40000000, ...")->required();
  cmd.add_option("--bar-offset", offset_, "offset of the mapping into the BAR (default 0)");
  cmd.add_option("--length", length_, "length of the mapping (default: the rest of the BAR)");
  cmd.add_option("--addr", address_, "MAP_FIXED address (default: what mmap(NULL) picks)");
  cmd.add_option("--design", design_, "one design (default: all)");
  cmd.add_option("--json", json_, "write JSON to FILE, or '-' for stdout instead of the text");
}

int ExplainCommand::run() {
  sim::ExplainRequest req;
  req.barSize = sizeOption("--bar-size", barSize_);
  if (!offset_.empty()) req.offset = sizeOption("--bar-offset", offset_);
  if (!length_.empty()) req.length = sizeOption("--length", length_);
  if (!address_.empty()) req.address = sizeOption("--addr", address_);
  if (!design_.empty()) req.designs = parseDesigns({design_});
  req.jobs = defaultJobs();
  // Opened before the probes run, so that a bad path fails at once.
  const auto file = json_ == "-" ? nullptr : openOutput(json_, "JSON");
  const sim::Explanation e = sim::explain(req);
  if (json_ == "-") {
    fmt::print("{}\n", report::jsonText(report::explanationToJson(e), 2));
    return 0;
  }
  fmt::print("{}", report::explanationText(e));
  if (file) {
    file->stream() << report::jsonText(report::explanationToJson(e), 2) << "\n";
    file->commit();
  }
  return 0;
}

}  // namespace vfiomm::tools
