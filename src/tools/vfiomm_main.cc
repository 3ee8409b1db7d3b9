// The vfiomm command line: `compare` (the default), `run`, `validate` and
// `designs`. Later issues add `sweep` and `explain`.
//
// Exit status: 0 on success; 1 when a design that should keep every
// invariant broke one (vma-list's known holes are reported, not failures);
// 2 on bad input (a scenario file, an unknown design).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "sim/report.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "vfio/mapping_design.h"

namespace {

constexpr const char* kVersion = "vfiomm 0.1.0";
constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;

void printDesigns() {
  for (vfiomm::DesignKind d : vfiomm::allDesigns())
    fmt::print("  {:<14} {:<11} {}\n", vfiomm::designName(d), vfiomm::defaultProfile(d),
               vfiomm::designSummary(d));
}

vfiomm::sim::Scenario load(const std::string& path) {
  return path.empty() ? vfiomm::sim::defaultScenario() : vfiomm::sim::loadScenario(path);
}

std::vector<vfiomm::DesignKind> parseDesigns(const std::vector<std::string>& names) {
  std::vector<vfiomm::DesignKind> out;
  if (names.empty()) return vfiomm::allDesigns();
  for (const std::string& n : names) {
    auto d = vfiomm::designByName(n);
    if (!d) {
      std::string known;
      for (vfiomm::DesignKind k : vfiomm::allDesigns())
        known += fmt::format("{}{}", known.empty() ? "" : ", ", vfiomm::designName(k));
      throw vfiomm::sim::ScenarioError(fmt::format("unknown design '{}' (known: {})", n, known));
    }
    out.push_back(*d);
  }
  return out;
}

int runAndReport(const vfiomm::sim::Scenario& sc, const std::vector<vfiomm::DesignKind>& designs,
                 const std::string& jsonPath) {
  std::vector<vfiomm::sim::DesignResult> results;
  for (vfiomm::DesignKind d : designs) {
    fmt::print(stderr, "running {} ...\n", vfiomm::designName(d));
    results.push_back(vfiomm::sim::runScenario(sc, d));
  }
  fmt::print("{}", vfiomm::sim::formatTable(sc, results));
  if (!jsonPath.empty()) {
    std::ofstream out(jsonPath);
    if (!out) {
      fmt::print(stderr, "vfiomm: cannot write {}\n", jsonPath);
      return kExitBadInput;
    }
    out << vfiomm::sim::resultsToJson(sc, results).dump(2) << "\n";
  }
  for (const auto& r : results)
    if (r.failed) return kExitFailed;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vfiomm: an executable model of vfio-pci BAR mappings"};
  app.set_version_flag("--version", kVersion);

  auto* designs = app.add_subcommand("designs", "list the designs the model compares");

  std::string compareScenario;
  std::vector<std::string> compareDesigns;
  std::string compareJson;
  auto* compare = app.add_subcommand("compare", "run a scenario against several designs (the default command)");
  compare->add_option("scenario", compareScenario, "scenario YAML file (default: the built-in gpu-passthrough)");
  compare->add_option("--designs", compareDesigns, "designs to compare (default: all)")->delimiter(',');
  compare->add_option("--json", compareJson, "also write the results as JSON (docs/json-schema.md)");

  std::string runScenarioPath;
  std::string runDesign;
  std::string runJson;
  auto* run = app.add_subcommand("run", "run a scenario against one design");
  run->add_option("scenario", runScenarioPath, "scenario YAML file")->required();
  run->add_option("--design", runDesign, "the design")->required();
  run->add_option("--json", runJson, "also write the results as JSON (docs/json-schema.md)");

  std::string validatePath;
  auto* validate = app.add_subcommand("validate", "check a scenario file without running it");
  validate->add_option("scenario", validatePath, "scenario YAML file")->required();

  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);

  try {
    if (designs->parsed()) {
      printDesigns();
      return 0;
    }
    if (validate->parsed()) {
      const auto sc = vfiomm::sim::loadScenario(validatePath);
      fmt::print("{}: ok ({} devices, {} processes, {} phases)\n", validatePath, sc.devices.size(),
                 sc.processes.size(), sc.phases.size());
      return 0;
    }
    if (run->parsed())
      return runAndReport(load(runScenarioPath), parseDesigns({runDesign}), runJson);
    // `compare`, or no command at all.
    return runAndReport(load(compareScenario), parseDesigns(compareDesigns), compareJson);
  } catch (const vfiomm::sim::ScenarioError& e) {
    fmt::print(stderr, "{}\n", e.what());
    return kExitBadInput;
  }
}
