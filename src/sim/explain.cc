#include "sim/explain.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "base/byte_format.h"
#include "base/byte_units.h"
#include "base/page_geometry.h"
#include "sim/scenario.h"
#include "sim/work_pool.h"

namespace vfiomm::sim {

namespace {

using Json = nlohmann::ordered_json;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPmdSize = 2ULL << 20;
// x86-64 4-level paging: user space ends one page below 128 TiB.
constexpr uint64_t kUserTop = (1ULL << 47) - kPage;

// Whole size-aligned blocks inside [address, address + length).
uint64_t alignedBlocks(uint64_t address, uint64_t length, uint64_t size) {
  const uint64_t first = roundUp(address, size);
  const uint64_t last = roundDown(address + length, size);
  return last > first ? (last - first) / size : 0;
}

HugeCheck checkSize(DesignKind design, uint64_t barSize, uint64_t offset, uint64_t length,
                    uint64_t address, uint64_t size) {
  HugeCheck c;
  c.size = size;
  const std::string s = formatBytes(size);
  if (!designTraits(design).mapsHugeEntries) {
    c.rule = "HUGE-11; vfio-bar-mapping.md §5.4";
    c.reason = fmt::format("{} has no huge_fault op: every entry is 4 KiB", designName(design));
    c.fix = "use the huge-fault design (Linux 6.12+) or prefault";
    return c;
  }
  if (barSize < size) {
    c.rule =
        "vfio-bar-mapping.md §5.4 (the block must lie inside the VMA, which lies inside the BAR)";
    c.reason = fmt::format("the BAR ({}) is smaller than {}", formatBytes(barSize), s);
    return c;
  }
  const uint64_t addrMod = address % size;
  const uint64_t offMod = offset % size;
  if (addrMod != offMod) {
    // The BAR is size-aligned in physical memory and its region offset a
    // multiple of 2^40, so the pfn is size-aligned exactly where the BAR
    // offset is: an aligned VA block maps an aligned pfn block only when
    // VA ≡ offset (mod size).
    c.rule =
        "HUGE-03, HUGE-05; vfio-bar-mapping.md §5.4 (pfn not a multiple of 2^order) and §14 "
        "(VA ≡ file offset mod size)";
    c.reason = fmt::format(
        "address {:#x} ≢ BAR offset {:#x} (mod {}): address mod {} is {:#x}, offset mod {} is "
        "{:#x}",
        address, offset, s, s, addrMod, s, offMod);
    const uint64_t fixed = roundDown(address, size) + offMod + (offMod < addrMod ? size : 0);
    c.fix =
        fmt::format("map at an address ≡ {:#x} (mod {}), e.g. {:#x}{}", offMod, s, fixed,
                    offMod == 0 ? " (QEMU 9.2's alignment to min(length, 1 GiB) gives this)" : "");
    return c;
  }
  const uint64_t blocks = alignedBlocks(address, length, size);
  if (blocks == 0) {
    const uint64_t first = roundUp(address, size);
    c.rule =
        "HUGE-06; vfio-bar-mapping.md §5.4 (the aligned block must lie inside [vm_start, vm_end))";
    c.reason = fmt::format("the mapping [{:#x}, {:#x}) holds no whole {}-aligned block", address,
                           address + length, s);
    if (first + size - address + offset <= barSize)
      c.fix = fmt::format("use length ≥ {} ({:#x})", formatBytes(first + size - address),
                          first + size - address);
    else
      c.fix = fmt::format(
          "map from a BAR offset that leaves a whole {}-aligned block before the end of the BAR",
          s);
    return c;
  }
  c.usable = true;
  c.reason = fmt::format("{} whole {}-aligned block(s), address ≡ offset (mod {})", blocks, s, s);
  return c;
}

}  // namespace

void validateExplainRequest(const ExplainRequest& req) {
  if (!isPowerOfTwo(req.barSize) || req.barSize < kPage)
    throw ScenarioError(
        fmt::format("--bar-size {:#x}: a memory BAR's size is a power of two, and vfio mmaps only "
                    "BARs of at least 4 KiB",
                    req.barSize));
  if (req.offset % kPage != 0)
    throw ScenarioError(
        fmt::format("--bar-offset {:#x} is not a multiple of 4 KiB (mmap offsets are page-aligned)",
                    req.offset));
  if (req.offset >= req.barSize)
    throw ScenarioError(fmt::format("--bar-offset {:#x} is not inside the {} BAR", req.offset,
                                    formatBytes(req.barSize)));
  const uint64_t length = req.length.value_or(req.barSize - req.offset);
  if (length == 0 || length % kPage != 0)
    throw ScenarioError(fmt::format("--length {:#x} must be a non-zero multiple of 4 KiB", length));
  if (length > req.barSize - req.offset)
    throw ScenarioError(fmt::format(
        "--bar-offset {:#x} + --length {:#x} runs past the end of the {} BAR (vfio refuses "
        "the mmap with EINVAL)",
        req.offset, length, formatBytes(req.barSize)));
  if (req.address) {
    if (*req.address == 0 || *req.address % kPage != 0)
      throw ScenarioError(
          fmt::format("--addr {:#x} must be a non-zero multiple of 4 KiB", *req.address));
    if (*req.address > kUserTop || length > kUserTop - *req.address)
      throw ScenarioError(
          fmt::format("--addr {:#x} + {:#x} runs past the end of user space ({:#x})", *req.address,
                      length, kUserTop));
  }
}

std::vector<HugeCheck> diagnoseHugePages(DesignKind design, uint64_t barSize, uint64_t offset,
                                         uint64_t length, uint64_t address) {
  std::vector<HugeCheck> out;
  for (uint64_t size : {kPmdSize, kGiB})
    out.push_back(checkSize(design, barSize, offset, length, address, size));
  const LeafCounts n = predictLeaves(out, length, address);
  out[0].predictedLeaves = n.pmd;
  out[1].predictedLeaves = n.pud;
  return out;
}

LeafCounts predictLeaves(const std::vector<HugeCheck>& checks, uint64_t length, uint64_t address) {
  // The fault path tries PUD, then PMD, then PTE (mm-pfnmap.md §9.2); with
  // a linear touch every usable block gets its largest leaf.
  LeafCounts n;
  for (const HugeCheck& c : checks) {
    if (!c.usable) continue;
    if (c.size == kGiB) n.pud = alignedBlocks(address, length, kGiB);
  }
  for (const HugeCheck& c : checks) {
    if (!c.usable || c.size != kPmdSize) continue;
    n.pmd = alignedBlocks(address, length, kPmdSize) - n.pud * (kGiB / kPmdSize);
  }
  n.pte = (length - n.pud * kGiB - n.pmd * kPmdSize) / kPage;
  return n;
}

ProbeSpec explainProbe(const ExplainRequest& req, DesignKind design) {
  ProbeSpec p;
  p.design = design;
  p.barSize = req.barSize;
  p.offset = req.offset;
  p.length = req.length.value_or(req.barSize - req.offset);
  p.sampleAbove = req.sampleAbove;
  if (req.address) {
    p.placement = Placement::kFixed;
    p.address = *req.address;
  }
  return p;
}

DesignExplanation explainDesign(const ExplainRequest& req, DesignKind design,
                                const ProbeResult& probe) {
  DesignExplanation d;
  d.design = design;
  d.probe = probe;
  d.huge = diagnoseHugePages(design, req.barSize, req.offset, probe.length, probe.address);
  d.predicted = predictLeaves(d.huge, probe.length, probe.address);
  d.agrees = probe.touch.pte == d.predicted.pte && probe.touch.pmd == d.predicted.pmd &&
             probe.touch.pud == d.predicted.pud;
  d.dma = estimateDmaMap(probe.touch, req.barSize, req.offset, probe.length);
  return d;
}

Explanation explain(const ExplainRequest& req) {
  validateExplainRequest(req);
  Explanation e;
  e.request = req;
  e.length = req.length.value_or(req.barSize - req.offset);
  const std::vector<DesignKind> designs = req.designs.empty() ? allDesigns() : req.designs;
  std::vector<ProbeResult> probes(designs.size());
  runConcurrently(designs.size(), req.jobs,
                  [&](size_t i) { probes[i] = runProbe(explainProbe(req, designs[i])); });
  for (size_t i = 0; i < designs.size(); ++i)
    e.designs.push_back(explainDesign(req, designs[i], probes[i]));
  return e;
}

}  // namespace vfiomm::sim
