#include "tools/catalog_commands.h"

#include <fmt/format.h>

#include "pci/device_catalog.h"
#include "sim/scenario.h"
#include "vfio/mapping_design.h"

namespace vfiomm::tools {

DesignsCommand::DesignsCommand(CLI::App& parent)
    : Subcommand(parent, "designs", "list the designs the model compares") {}

int DesignsCommand::run() {
  for (DesignKind d : allDesigns())
    fmt::print("  {:<14} {:<11} {}\n", designName(d), defaultProfile(d), designSummary(d));
  return 0;
}

DevicesCommand::DevicesCommand(CLI::App& parent, std::string& devicesDir)
    : Subcommand(parent, "devices",
                 "list the device catalog: ids, BARs, capabilities (docs/devices.md)") {
  app().add_option("--devices-dir", devicesDir,
                   "the device catalog (default: devices/ of the source tree)");
}

int DevicesCommand::run() {
  fmt::print("{}", listCatalog(devicesDir()));
  return 0;
}

ValidateCommand::ValidateCommand(CLI::App& parent)
    : Subcommand(parent, "validate", "check a scenario file without running it") {
  app().add_option("scenario", path_, "scenario YAML file")->required();
}

int ValidateCommand::run() {
  const sim::Scenario sc = sim::loadScenario(path_);
  fmt::print("{}: ok ({} devices, {} processes, {} phases)\n", path_, sc.devices.size(),
             sc.processes.size(), sc.phases.size());
  return 0;
}

}  // namespace vfiomm::tools
