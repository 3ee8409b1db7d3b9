// The vfiomm command line. Later issues add `compare`, `run`, `validate`,
// `sweep` and `explain`; for now it prints what it is and the designs it knows.
#include <cstdio>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace {

struct DesignInfo {
  const char* name;
  const char* line;
};

// ARCHITECTURE's design table, one line each.
constexpr DesignInfo kDesigns[] = {
    {"vma-list", "G1, Linux 5.8-6.9: whole-VMA io_remap_pfn_range fill, per-device VMA list"},
    {"address-space", "G2s, the seed: one vmf_insert_pfn per fault, unmap_mapping_range zap"},
    {"fill-vma", "G2, Linux 6.10/6.11: the first fault inserts every page of the VMA"},
    {"huge-fault", "G3, Linux 6.12+: huge_fault PUD -> PMD -> PTE"},
    {"prefault", "ours: huge-fault plus re-insertion when memory decode comes back"},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vfiomm: an executable model of vfio-pci BAR mappings"};
  app.set_version_flag("--version", "vfiomm 0.1.0");
  auto* designs = app.add_subcommand("designs", "list the designs the model compares");
  CLI11_PARSE(app, argc, argv);

  if (!designs->parsed()) fmt::print("vfiomm 0.1.0\n");
  fmt::print("designs:\n");
  for (const DesignInfo& d : kDesigns) fmt::print("  {:<14} {}\n", d.name, d.line);
  return 0;
}
