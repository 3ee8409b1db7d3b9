// The designs table (ARCHITECTURE.md): what users see of each design (its
// name, the kernel profile of its era, a summary) and what it implies for
// those who judge its results without running its code (the traits). How a
// design behaves is the policies it is composed of (mapping_design.h).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace vfiomm {

enum class DesignKind { kVmaList, kAddressSpace, kFillVma, kHugeFault, kPrefault };

struct DesignTraits {
  // Invariant-1 violations and lockdep reports are the known holes of the
  // kernel it models (G1: forked and moved VMAs escape the VMA list, and
  // io_remap_pfn_range runs under the mmap *read* lock): reported, never a
  // failure of the run.
  bool expectsHoles = false;
  // Faults or fills install PMD and PUD leaves (it has ->huge_fault).
  bool mapsHugeEntries = false;
  // mmap rewrote vm_pgoff to the BAR's pfn (G1), so the pfn behind vm_start
  // is vm_pgoff itself rather than vma_to_pfn() of a file offset.
  bool pgoffHoldsPfn = false;
  // Mappings a zap removed come back when decode does, before any access.
  bool refillsOnEnable = false;
};

std::string_view designName(DesignKind kind);
std::optional<DesignKind> designByName(std::string_view name);
std::vector<DesignKind> allDesigns();
// The kernel profile of the design's era (mm-pfnmap.md §14).
std::string_view defaultProfile(DesignKind kind);
// One line for `vfiomm designs`.
std::string_view designSummary(DesignKind kind);
const DesignTraits& designTraits(DesignKind kind);

}  // namespace vfiomm
