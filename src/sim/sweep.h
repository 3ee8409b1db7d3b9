// `vfiomm sweep` (docs/sweep.md): BAR sizes × mapping alignments × designs,
// each point a BarProbe (touch, decode toggle, retouch) on a kernel of its
// own. report/sweep_report.h writes the rows out; tools/ has the command.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/bar_probe.h"

namespace vfiomm::sim {

// Alignments a sweep point can have. The mapping address is aligned to
// exactly this and deliberately not to the next larger page size, so 4K
// means "4 KiB-aligned, not 2 MiB-aligned"; natural is QEMU 9.2's
// placement (min(size, 1 GiB) alignment).
inline const std::vector<std::string>& sweepAlignments() {
  static const std::vector<std::string> kAll = {"4K", "2M", "1G", "natural"};
  return kAll;
}

struct SweepOptions {
  std::vector<uint64_t> sizes;          // BAR sizes, powers of two
  std::vector<std::string> alignments;  // from sweepAlignments()
  std::vector<DesignKind> designs;
  unsigned jobs = 1;  // points at once, each on a thread of its own
  uint64_t sampleAbove = kDefaultSampleAbove;
  CostModel cost;
};

// 64 KiB .. 128 GiB, every alignment, every design.
SweepOptions defaultSweepOptions();

// "64K-1G" (every power of two in between) or "64K,2M,1G". Throws
// ScenarioError with a message naming the bad part.
std::vector<uint64_t> parseSizeList(const std::string& text);
// Checks names against sweepAlignments(); throws ScenarioError.
std::vector<std::string> parseAlignmentList(const std::vector<std::string>& names);

struct SweepRow {
  uint64_t barSize = 0;
  std::string alignment;
  DesignKind design = DesignKind::kHugeFault;
  ProbeResult result;
};

// The probe of one sweep point (the whole BAR mapped).
ProbeSpec sweepPoint(uint64_t barSize, const std::string& alignment, DesignKind design,
                     const SweepOptions& options);

// Every point, `jobs` at once; rows ordered by size, alignment, design.
// `started` reports each point as it starts.
std::vector<SweepRow> runSweep(const SweepOptions& options,
                               const std::function<void(const SweepRow&)>& started = {});

}  // namespace vfiomm::sim
