// The vfiomm command line. Later issues add `compare`, `run`, `validate`,
// `sweep` and `explain`; for now it prints what it is and the designs it knows.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "vfio/mapping_design.h"

namespace {

constexpr const char* kVersion = "vfiomm 0.1.0";

void printDesigns() {
  for (vfiomm::DesignKind d : vfiomm::allDesigns())
    fmt::print("  {:<14} {:<11} {}\n", vfiomm::designName(d), vfiomm::defaultProfile(d),
               vfiomm::designSummary(d));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vfiomm: an executable model of vfio-pci BAR mappings"};
  app.set_version_flag("--version", kVersion);
  auto* designs = app.add_subcommand("designs", "list the designs the model compares");
  CLI11_PARSE(app, argc, argv);

  if (!designs->parsed()) fmt::print("{}\ndesigns (name, default kernel profile, what):\n", kVersion);
  printDesigns();
  return 0;
}
