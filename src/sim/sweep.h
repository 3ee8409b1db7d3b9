// `vfiomm sweep` (docs/sweep.md): BAR sizes × mapping alignments × designs,
// each point a BarProbe (touch, decode toggle, retouch) run in a child
// process of its own, written out as CSV, JSON, a summary table and an
// HTML report with log–log charts.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/bar_probe.h"

namespace vfiomm::sim {

inline constexpr int kSweepSchemaVersion = 1;

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
  unsigned jobs = 1;  // points at once, each in a child process
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

// Every point, each in a child process (`jobs` at once); rows ordered by
// size, alignment, design. `started` reports progress in the parent.
std::vector<SweepRow> runSweep(const SweepOptions& options,
                               const std::function<void(const SweepRow&)>& started = {});

nlohmann::ordered_json sweepToJson(const SweepOptions& options, const std::vector<SweepRow>& rows);
std::string sweepToCsv(const std::vector<SweepRow>& rows);
// Per design × alignment: the first touch's faults and modelled time at up
// to five of the swept sizes; sampled cells are marked.
std::string sweepSummary(const SweepOptions& options, const std::vector<SweepRow>& rows);

// A self-contained HTML page: per alignment, log–log charts of the first
// touch's faults and modelled time against BAR size, a line per design;
// the summary table; which points were sampled.
std::string sweepReportHtml(const SweepOptions& options, const std::vector<SweepRow>& rows);

// `vfiomm sweep` from its parsed arguments: runs the sweep, prints the
// summary, writes the files asked for (sim/output_file.h). Returns the exit
// status, 0; throws OutputError for a file that cannot be written (checked
// before anything runs).
struct SweepCommand {
  SweepOptions options;
  std::string csvPath, jsonPath, reportPath;
};
int runSweepCommand(const SweepCommand& cmd);

}  // namespace vfiomm::sim
