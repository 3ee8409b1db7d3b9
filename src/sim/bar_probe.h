// BarProbe: what one BAR mapping costs under one design — the measurement
// behind `vfiomm sweep` and `vfiomm explain` (docs/sweep.md). One device
// with one 64-bit prefetchable BAR, one process that maps (part of) it,
// then three phases: a full touch (one load per 4 KiB page, in address
// order), a memory-decode toggle (COMMAND.MEMORY off, then on) and the
// same full touch again.
//
// Large mappings are sampled: a mapping longer than `sampleAbove` with n
// whole 1 GiB-aligned blocks is measured twice, cut to j and j + 1 whole
// blocks (same address, offset, head and tail; j = 0 when there is a
// partial head or tail, else 1), and every count is extrapolated along
// that line to n blocks. Every whole block of a mapping
// has the same VA/pfn alignment (BARs are size-aligned in physical memory),
// so each adds the same faults, entries, TLB misses, zapped entries and
// page tables — fills of the whole VMA included — and the extrapolation is
// exact; tests check it against full runs. The result says it was sampled.
//
// A probe builds a kernel of its own, so probes run side by side on threads
// of one process (sim/work_pool.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/byte_units.h"
#include "sim/cost_model.h"
#include "sim/runner.h"
#include "vfio/mapping_design.h"

namespace vfiomm::sim {

// Mappings longer than this are sampled by default: a 4 KiB fault and its
// access cost the model about 1 µs of host time, so a touch of 4 GiB at
// 4 KiB already takes a second.
inline constexpr uint64_t kDefaultSampleAbove = 4 * kGiB;
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

// Whole 1 GiB-aligned blocks inside [address, address + length).
uint64_t wholeBlocks(uint64_t address, uint64_t length);
// A mapping is sampled only when it has at least this many whole blocks.
inline constexpr uint64_t kMinSampledBlocks = 3;

struct ProbeResult {
  std::string profile;
  uint64_t address = 0;  // where the mapping landed
  uint64_t length = 0;
  bool sampled = false;
  double sampledFraction = 1.0;  // the longer measured mapping / this one
  Metrics touch;
  Metrics toggle;
  Metrics retouch;
  std::vector<std::string> notes;  // syscalls that failed
};

// Throws ScenarioError when the kernel refuses the device or the mapping.
// Samples when isSampled() says so.
ProbeResult runProbe(const ProbeSpec& spec);

// The mapping of `spec` at `address` is long enough to be sampled.
bool isSampled(const ProbeSpec& spec, uint64_t address);

// The two cut-down runs behind a sampled probe. They do not depend on the
// length beyond the cut, so one sample serves every longer mapping with
// the same address, offset and head/tail (the sweep's larger BARs).
struct ProbeSample {
  uint64_t address = 0;
  uint64_t blocks = 0;  // whole blocks in `shorter`; `longer` has one more
  ProbeResult shorter;
  ProbeResult longer;
};
ProbeSample sampleProbe(const ProbeSpec& spec);
// The result for `spec` (at sample.address), counts extrapolated.
ProbeResult extrapolateProbe(const ProbeSample& sample, const ProbeSpec& spec);

// One phase's counts as a flat object, and a probe's result, as the sweep
// and explain JSON hold them (docs/sweep.md).
nlohmann::ordered_json phaseToJson(const Metrics& m);
nlohmann::ordered_json probeResultToJson(const ProbeResult& r);

}  // namespace vfiomm::sim
