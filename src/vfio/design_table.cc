#include "vfio/design_table.h"

namespace vfiomm {

namespace {

struct DesignRow {
  DesignKind kind;
  std::string_view name;
  std::string_view profile;
  std::string_view summary;
  DesignTraits traits;
};

// ARCHITECTURE.md's design table.
constexpr DesignRow kDesigns[] = {
    {DesignKind::kVmaList,
     "vma-list",
     "linux-6.9",
     "G1, Linux 5.8-6.9: first fault fills the VMA with io_remap_pfn_range; VMA list zap",
     {.expectsHoles = true, .pgoffHoldsPfn = true}},
    {DesignKind::kAddressSpace,
     "address-space",
     "linux-6.10",
     "G2s, the seed: one vmf_insert_pfn per fault; unmap_mapping_range zap",
     {}},
    {DesignKind::kFillVma,
     "fill-vma",
     "linux-6.10",
     "G2, Linux 6.10/6.11: the first fault inserts every page of the VMA",
     {}},
    {DesignKind::kHugeFault,
     "huge-fault",
     "linux-6.12",
     "G3, Linux 6.12+: huge_fault PUD -> PMD -> PTE",
     {.mapsHugeEntries = true}},
    {DesignKind::kPrefault,
     "prefault",
     "linux-6.12",
     "ours: huge-fault, plus re-insertion of every mapping when decode comes back",
     {.mapsHugeEntries = true, .refillsOnEnable = true}},
};

const DesignRow& row(DesignKind kind) {
  for (const DesignRow& r : kDesigns)
    if (r.kind == kind) return r;
  return kDesigns[0];
}

}  // namespace

std::string_view designName(DesignKind kind) { return row(kind).name; }
std::string_view defaultProfile(DesignKind kind) { return row(kind).profile; }
std::string_view designSummary(DesignKind kind) { return row(kind).summary; }
const DesignTraits& designTraits(DesignKind kind) { return row(kind).traits; }

std::optional<DesignKind> designByName(std::string_view name) {
  for (const DesignRow& r : kDesigns)
    if (r.name == name) return r.kind;
  return std::nullopt;
}

std::vector<DesignKind> allDesigns() {
  std::vector<DesignKind> out;
  for (const DesignRow& r : kDesigns) out.push_back(r.kind);
  return out;
}

}  // namespace vfiomm
