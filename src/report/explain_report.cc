#include "report/explain_report.h"

#include <fmt/format.h>

#include "base/byte_format.h"
#include "base/byte_units.h"
#include "report/dma_map_json.h"
#include "sim/bar_probe.h"

namespace vfiomm::report {

using sim::Metrics;

namespace {

using Json = nlohmann::ordered_json;
using sim::DesignExplanation;
using sim::ExplainRequest;
using sim::Explanation;
using sim::HugeCheck;
using sim::Metrics;

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
    dj["touch"] = sim::phaseToJson(d.probe.touch);
    Json huge = Json::object();
    for (const HugeCheck& c : d.huge) huge[sizeName(c.size)] = checkToJson(c);
    dj["huge"] = huge;
    dj["predicted"] =
        Json{{"pte", d.predicted.pte}, {"pmd", d.predicted.pmd}, {"pud", d.predicted.pud}};
    dj["model_agrees"] = d.agrees;
    dj["dma_map"] = dmaMapToJson(d.dma);
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
                  formatBytes(r.barSize), r.offset, formatBytes(e.length),
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
                       formatBytes(m.pgtablesPeak), m.modeledNs / 1e6);
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
        out += fmt::format("    {}: usable — {}; {} leaves by the rules\n", formatBytes(c.size),
                           c.reason, c.predictedLeaves);
        continue;
      }
      out += fmt::format("    {}: blocked — {} [{}]\n", formatBytes(c.size), c.reason, c.rule);
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

}  // namespace vfiomm::report
