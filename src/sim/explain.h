// `vfiomm explain` (docs/explain.md): for one BAR mapping, what a full touch
// costs under each design — faults, entries of each size, page-table
// memory, modelled time, all measured by running a BarProbe — and, for
// each huge page size, whether the mapping can use it, and if not which
// kernel rule stands in the way and what would fix it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sim/bar_probe.h"
#include "sim/dma_map_estimate.h"

namespace vfiomm::sim {

struct ExplainRequest {
  uint64_t barSize = 0;
  uint64_t offset = 0;
  std::optional<uint64_t> length;   // default: the rest of the BAR
  std::optional<uint64_t> address;  // default: where mmap(NULL) puts it
  std::vector<DesignKind> designs;  // default: all
  unsigned jobs = 1;
  uint64_t sampleAbove = kDefaultSampleAbove;
};

// Throws ScenarioError saying what is wrong: the BAR size must be a power
// of two of at least 4 KiB; offset, length and address page-aligned; the
// mapping inside the BAR and inside user space.
void validateExplainRequest(const ExplainRequest& req);

// Why one huge page size can or cannot be used by the mapping.
struct HugeCheck {
  uint64_t size = 0;  // 2 MiB or 1 GiB
  bool usable = false;
  std::string rule;              // conformance IDs and spec sections; empty when usable
  std::string reason;            // one sentence
  std::string fix;               // empty when usable or nothing can fix it
  uint64_t predictedLeaves = 0;  // entries of this size a full touch installs, by the rules
};

// Entries of each size a full touch installs, by the rules alone.
struct LeafCounts {
  uint64_t pte = 0, pmd = 0, pud = 0;
};

// The rules for one mapping (vfio-bar-mapping.md §5.4 and §14): checked in
// the order the kernel applies them; the first that blocks a size is named.
std::vector<HugeCheck> diagnoseHugePages(DesignKind design, uint64_t barSize, uint64_t offset,
                                         uint64_t length, uint64_t address);
LeafCounts predictLeaves(const std::vector<HugeCheck>& checks, uint64_t length, uint64_t address);

struct DesignExplanation {
  DesignKind design = DesignKind::kHugeFault;
  ProbeResult probe;
  std::vector<HugeCheck> huge;
  LeafCounts predicted;
  DmaMapEstimate dma;
  // The model installed exactly the predicted entries.
  bool agrees = false;
};

struct Explanation {
  ExplainRequest request;
  uint64_t length = 0;  // resolved
  std::vector<DesignExplanation> designs;
};

ProbeSpec explainProbe(const ExplainRequest& req, DesignKind design);
// Explains one design from a probe result (pure; what explain() does per design).
DesignExplanation explainDesign(const ExplainRequest& req, DesignKind design,
                                const ProbeResult& probe);
// Validates, runs a probe per design (`jobs` at once, each on a kernel of
// its own) and explains each.
Explanation explain(const ExplainRequest& req);

}  // namespace vfiomm::sim
