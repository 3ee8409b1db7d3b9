// BarProbe: what one BAR mapping costs under one design — the measurement
// behind `vfiomm sweep` and `vfiomm explain` (docs/sweep.md). One device
// with one 64-bit prefetchable BAR, one process that maps (part of) it,
// then three phases: a full touch (one load per 4 KiB page, in address
// order), a memory-decode toggle (COMMAND.MEMORY off, then on) and the
// same full touch again.
//
// Large mappings are sampled: only a head, a middle and a tail window are
// touched, and what the untouched middle would have cost is added as
// copies of the middle window (see sampleWindows()). The result says so.
//
// The model's counters are process-wide: a probe must be the only thing
// running in its process (vfiomm runs each in a child process).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/cost_model.h"
#include "sim/runner.h"
#include "vfio/mapping_design.h"

namespace vfiomm::sim {

inline constexpr uint64_t kGiB = 1ULL << 30;
// Mappings longer than this are sampled by default: a 4 KiB fault costs
// the model ~0.3 µs of host time, so a 16 GiB touch at 4 KiB is ~1.3 s.
inline constexpr uint64_t kDefaultSampleAbove = 16 * kGiB;
// The index of the probed BAR (64-bit, prefetchable: it also takes index 1).
inline constexpr unsigned kProbeBar = 0;

// Where the mapping goes.
enum class Placement {
  kKernel,   // mmap(NULL): get_unmapped_area of the design's kernel profile
  kAligned,  // QEMU 9.2: reserve length + align, round up, MAP_FIXED there
  kFixed,    // MAP_FIXED at `address`
};

struct ProbeSpec {
  DesignKind design = DesignKind::kHugeFault;
  uint64_t barSize = 0;
  uint64_t offset = 0;  // into the BAR
  uint64_t length = 0;  // 0: the rest of the BAR
  Placement placement = Placement::kKernel;
  uint64_t align = 0;    // kAligned
  uint64_t address = 0;  // kFixed
  uint64_t sampleAbove = kDefaultSampleAbove;
  CostModel cost;

  uint64_t mappedLength() const { return length != 0 ? length : barSize - offset; }
};

// A range of the mapping, as offsets from its start.
struct Window {
  uint64_t begin = 0;
  uint64_t end = 0;
};

// The touched windows of a mapping of `length` bytes at `address`: the
// whole mapping, or — when sampling — a head up to the end of the first
// whole 1 GiB-aligned block, one whole block in the middle, and a tail from
// the start of the last whole block. `middle` is the index of the middle
// window, `copies` how many more blocks like it the mapping holds; both 0
// when not sampling. Every block between head and tail is 1 GiB-aligned
// and whole, and BARs are size-aligned in physical memory, so each block
// has the same VA/pfn alignment as the middle one and costs the same.
struct SampledWindows {
  std::vector<Window> windows;
  size_t middle = 0;
  uint64_t copies = 0;
  bool sampled() const { return copies != 0; }
  double fraction(uint64_t length) const;
};
SampledWindows sampleWindows(uint64_t address, uint64_t length, uint64_t sampleAbove);

struct ProbeResult {
  std::string profile;
  uint64_t address = 0;  // where the mapping landed
  uint64_t length = 0;
  bool sampled = false;
  double sampledFraction = 1.0;  // of the mapping's bytes actually touched
  Metrics touch;
  Metrics toggle;
  Metrics retouch;
  std::vector<std::string> notes;  // syscalls that failed
};

// Throws ScenarioError when the kernel refuses the device or the mapping.
ProbeResult runProbe(const ProbeSpec& spec);

// One phase's counts as a flat object (docs/sweep.md), and back: a probe
// runs in a child process and sends its result home as JSON.
nlohmann::ordered_json phaseToJson(const Metrics& m);
Metrics phaseFromJson(const nlohmann::ordered_json& j);
nlohmann::ordered_json probeResultToJson(const ProbeResult& r);
ProbeResult probeResultFromJson(const nlohmann::ordered_json& j);

}  // namespace vfiomm::sim
