#include "sim/explain.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "sim/output_file.h"
#include "sim/report.h"
#include "sim/scenario.h"
#include "sim/work_pool.h"

namespace vfiomm::sim {

namespace {

using Json = nlohmann::ordered_json;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPmdSize = 2ULL << 20;
// x86-64 4-level paging: user space ends one page below 128 TiB.
constexpr uint64_t kUserTop = (1ULL << 47) - kPage;

bool isPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }
uint64_t roundUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
uint64_t roundDown(uint64_t v, uint64_t a) { return v & ~(a - 1); }

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
  const std::string s = formatSize(size);
  if (!designTraits(design).mapsHugeEntries) {
    c.rule = "HUGE-11; vfio-bar-mapping.md §5.4";
    c.reason = fmt::format("{} has no huge_fault op: every entry is 4 KiB", designName(design));
    c.fix = "use the huge-fault design (Linux 6.12+) or prefault";
    return c;
  }
  if (barSize < size) {
    c.rule =
        "vfio-bar-mapping.md §5.4 (the block must lie inside the VMA, which lies inside the BAR)";
    c.reason = fmt::format("the BAR ({}) is smaller than {}", formatSize(barSize), s);
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
      c.fix = fmt::format("use length ≥ {} ({:#x})", formatSize(first + size - address),
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

std::string sizeName(uint64_t size) { return size == kGiB ? "1G" : "2M"; }

Json checkToJson(const HugeCheck& c) {
  Json j;
  j["size"] = c.size;
  j["usable"] = c.usable;
  j["rule"] = c.rule.empty() ? Json(nullptr) : Json(c.rule);
  j["reason"] = c.reason;
  j["fix"] = c.fix.empty() ? Json(nullptr) : Json(c.fix);
  j["predicted_leaves"] = c.predictedLeaves;
  return j;
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
                                    formatSize(req.barSize)));
  const uint64_t length = req.length.value_or(req.barSize - req.offset);
  if (length == 0 || length % kPage != 0)
    throw ScenarioError(fmt::format("--length {:#x} must be a non-zero multiple of 4 KiB", length));
  if (length > req.barSize - req.offset)
    throw ScenarioError(fmt::format(
        "--bar-offset {:#x} + --length {:#x} runs past the end of the {} BAR (vfio refuses "
        "the mmap with EINVAL)",
        req.offset, length, formatSize(req.barSize)));
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

Json explanationToJson(const Explanation& e) {
  Json j;
  j["schema_version"] = kExplainSchemaVersion;
  j["command"] = "explain";
  j["bar_size"] = e.request.barSize;
  j["bar_offset"] = e.request.offset;
  j["length"] = e.length;
  j["address_requested"] = e.request.address ? Json(*e.request.address) : Json(nullptr);
  Json ds = Json::array();
  for (const DesignExplanation& d : e.designs) {
    Json dj;
    dj["design"] = std::string(designName(d.design));
    dj["profile"] = d.probe.profile;
    dj["address"] = d.probe.address;
    dj["sampled"] = d.probe.sampled;
    dj["sampled_fraction"] = d.probe.sampledFraction;
    dj["touch"] = phaseToJson(d.probe.touch);
    Json huge = Json::object();
    for (const HugeCheck& c : d.huge) huge[sizeName(c.size)] = checkToJson(c);
    dj["huge"] = huge;
    dj["predicted"] =
        Json{{"pte", d.predicted.pte}, {"pmd", d.predicted.pmd}, {"pud", d.predicted.pud}};
    dj["model_agrees"] = d.agrees;
    dj["dma_map"] =
        Json{{"faults", d.dma.faults},
             {"lookups_per_4k", d.dma.lookupsPer4K},
             {"lookups_per_leaf", d.dma.lookupsPerLeaf},
             {"ioptes", Json{{"4k", d.dma.iopte4k}, {"2m", d.dma.iopte2m}, {"1g", d.dma.iopte1g}}},
             {"modeled_ns_per_4k", d.dma.modeledNsPer4K},
             {"modeled_ns_per_leaf", d.dma.modeledNsPerLeaf}};
    dj["notes"] = d.probe.notes;
    ds.push_back(dj);
  }
  j["designs"] = ds;
  return j;
}

std::string explanationText(const Explanation& e) {
  const ExplainRequest& r = e.request;
  std::string out =
      fmt::format("BAR {} (64-bit prefetchable), offset {:#x}, length {}{}, address {}\n\n",
                  formatSize(r.barSize), r.offset, formatSize(e.length),
                  r.length ? "" : " (the rest of the BAR)",
                  r.address ? fmt::format("{:#x} (MAP_FIXED)", *r.address)
                            : std::string("chosen by mmap(NULL) under each design's kernel"));
  out += "one full touch (a load in every 4 KiB page):\n";
  out += fmt::format("{:<14} {:<12} {:>16} {:>10} {:>9} {:>7} {:>7} {:>12} {:>12}\n", "design",
                     "profile", "address", "faults", "4K PTEs", "2M PMDs", "1G PUDs", "page tables",
                     "modelled");
  bool anySampled = false;
  for (const DesignExplanation& d : e.designs) {
    const Metrics& m = d.probe.touch;
    anySampled = anySampled || d.probe.sampled;
    out += fmt::format("{:<14} {:<12} {:>#16x} {:>10} {:>9} {:>7} {:>7} {:>12} {:>9.3f} ms\n",
                       fmt::format("{}{}", designName(d.design), d.probe.sampled ? "*" : ""),
                       d.probe.profile, d.probe.address, m.faults, m.pte, m.pmd, m.pud,
                       formatSize(m.pgtablesPeak), m.modeledNs / 1e6);
  }
  if (anySampled)
    out +=
        "* sampled: measured cut down to its partial 1 GiB blocks (or one block) and one block "
        "more, extrapolated "
        "to the whole mapping (docs/sweep.md)\n";
  out += "\nhuge pages:\n";
  for (const DesignExplanation& d : e.designs) {
    out += fmt::format("  {} at {:#x}:\n", designName(d.design), d.probe.address);
    for (const HugeCheck& c : d.huge) {
      if (c.usable) {
        out += fmt::format("    {}: usable — {}; {} leaves by the rules\n", formatSize(c.size),
                           c.reason, c.predictedLeaves);
        continue;
      }
      out += fmt::format("    {}: blocked — {} [{}]\n", formatSize(c.size), c.reason, c.rule);
      if (!c.fix.empty()) out += fmt::format("      fix: {}\n", c.fix);
    }
    out += d.agrees ? "    the model installed exactly these entries\n"
                    : fmt::format("    the model DISAGREES: predicted {} PTEs, {} PMDs, {} PUDs\n",
                                  d.predicted.pte, d.predicted.pmd, d.predicted.pud);
  }
  out +=
      "\nDMA-mapping it (type1 VFIO_IOMMU_MAP_DMA of the unpopulated mapping, IOVA 1 GiB "
      "aligned):\n";
  out += fmt::format("{:<14} {:>10} {:>14} {:>12} {:>14} {:>12} {:>16}\n", "design", "faults",
                     "lookups <=6.14", "modelled", "lookups 6.15+", "modelled", "IOPTEs 4K/2M/1G");
  for (const DesignExplanation& d : e.designs)
    out +=
        fmt::format("{:<14} {:>10} {:>14} {:>9.3f} ms {:>14} {:>9.3f} ms {:>16}\n",
                    designName(d.design), d.dma.faults, d.dma.lookupsPer4K,
                    d.dma.modeledNsPer4K / 1e6, d.dma.lookupsPerLeaf, d.dma.modeledNsPerLeaf / 1e6,
                    fmt::format("{}/{}/{}", d.dma.iopte4k, d.dma.iopte2m, d.dma.iopte1g));
  out +=
      "what makes it cheap: a 6.15+ kernel (one lookup per CPU leaf, not per 4 KiB) and a design "
      "whose leaves are "
      "huge, which needs the mapping's address congruent to the BAR's physical address modulo the "
      "leaf size "
      "(see the fixes above: QEMU 9.2 aligns to min(size, 1 GiB)); the IOVA 1 GiB aligned for 1 "
      "GiB IOPTEs.\n";
  return out;
}

int runExplainCommand(const ExplainRequest& req, const std::string& jsonPath) {
  // Opened before the probes run, so that a bad path fails at once.
  std::unique_ptr<OutputFile> file;
  if (!jsonPath.empty() && jsonPath != "-") file = std::make_unique<OutputFile>(jsonPath, "JSON");
  const Explanation e = explain(req);
  if (jsonPath == "-") {
    fmt::print("{}\n", jsonText(explanationToJson(e), 2));
    return 0;
  }
  fmt::print("{}", explanationText(e));
  if (file) {
    file->stream() << jsonText(explanationToJson(e), 2) << "\n";
    file->commit();
  }
  return 0;
}

}  // namespace vfiomm::sim
