// The vfiomm command line: `compare` (the default), `run`, `validate`,
// `designs`, `devices`, `sweep` (docs/sweep.md), `explain`
// (docs/explain.md) and `check` (docs/check.md), one class each.
//
// Exit status: 0 on success; 1 when a design that should keep every
// invariant broke one (vma-list's known holes are reported, not failures),
// or `check` found a violation; 2 on bad input (a command line CLI11
// refuses, a scenario file, an unknown design, a scenario whose devices the
// kernel refuses — also when that happens on a design's thread) and on an
// output file that cannot be written; 3 on an internal error (an exception
// nobody expected: a bug); 128 + N when signal N (SIGINT, SIGTERM, SIGHUP)
// stopped it, having left every output file as it was before.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "pci/device_catalog.h"
#include "report/interrupt.h"
#include "report/output_file.h"
#include "sim/scenario.h"
#include "tools/catalog_commands.h"
#include "tools/check_command.h"
#include "tools/compare_command.h"
#include "tools/explain_command.h"
#include "tools/run_command.h"
#include "tools/sweep_command.h"

namespace vfiomm::tools {
namespace {

constexpr const char* kVersion = "vfiomm 0.1.0";

// What stdout held must have reached it (`vfiomm compare > /dev/full`).
int flushStdout(int status) {
  if (std::fflush(stdout) == 0 && std::ferror(stdout) == 0) return status;
  std::fprintf(stderr, "vfiomm: writing the standard output failed: %s\n", std::strerror(errno));
  return status == 0 ? kExitBadInput : status;
}

// The parsed subcommand, or `compare` when none was given.
int runParsed(const std::vector<std::unique_ptr<Subcommand>>& commands, Subcommand& fallback) {
  try {
    for (const auto& c : commands)
      if (c->parsed()) return c->run();
    return fallback.run();
  } catch (const sim::ScenarioError& e) {
    fmt::print(stderr, "{}\n", e.what());
  } catch (const report::OutputError& e) {
    fmt::print(stderr, "{}\n", e.what());
  } catch (const CatalogError& e) {
    fmt::print(stderr, "{}\n", e.what());
  }
  return kExitBadInput;
}

int cliMain(int argc, char** argv) {
  CLI::App app{"vfiomm: an executable model of vfio-pci BAR mappings"};
  app.set_version_flag("--version", kVersion);
  std::string devicesDir;
  app.add_option("--devices-dir", devicesDir,
                 "the device catalog (default: devices/ of the source tree)");
  std::vector<std::unique_ptr<Subcommand>> commands;
  commands.push_back(std::make_unique<DesignsCommand>(app));
  commands.push_back(std::make_unique<DevicesCommand>(app, devicesDir));
  commands.push_back(std::make_unique<CompareCommand>(app));
  Subcommand& compare = *commands.back();
  commands.push_back(std::make_unique<RunCommand>(app));
  commands.push_back(std::make_unique<SweepCommand>(app));
  commands.push_back(std::make_unique<ExplainCommand>(app));
  commands.push_back(std::make_unique<ValidateCommand>(app));
  commands.push_back(std::make_unique<CheckSubcommand>(app));
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with status 0; every other one is
    // a bad command line, exit status 2 like all bad input (not CLI11's own
    // codes), with CLI11's message.
    return app.exit(e) == 0 ? 0 : kExitBadInput;
  }
  report::installInterruptHandlers();
  if (!devicesDir.empty()) setDevicesDir(devicesDir);
  return runParsed(commands, compare);
}

}  // namespace
}  // namespace vfiomm::tools

// Anything else thrown is a bug of vfiomm, never "an invariant broke" (1).
int main(int argc, char** argv) {
  try {
    return vfiomm::tools::flushStdout(vfiomm::tools::cliMain(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vfiomm: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "vfiomm: internal error: an exception that is not a std::exception\n");
  }
  return vfiomm::tools::kExitInternal;
}
