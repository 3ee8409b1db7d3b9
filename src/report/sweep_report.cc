#include "report/sweep_report.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/byte_format.h"
#include "base/html_escape.h"
#include "report/dma_map_json.h"
#include "report/html_report.h"
#include "report/svg_chart.h"
#include "sim/dma_map_estimate.h"

namespace vfiomm::report {

using sim::Metrics;

namespace {
using Json = nlohmann::ordered_json;
using sim::CostModel;
using sim::DmaMapEstimate;
using sim::Metrics;
using sim::SweepOptions;
using sim::SweepRow;
}  // namespace

Json sweepToJson(const SweepOptions& options, const std::vector<SweepRow>& rows) {
  Json j;
  j["schema_version"] = kSweepSchemaVersion;
  j["command"] = "sweep";
  j["sample_above_bytes"] = options.sampleAbove;
  Json cost;
  for (const auto& f : CostModel::fields()) cost[f.key] = options.cost.*f.member;
  j["cost_model"] = cost;
  Json rs = Json::array();
  for (const SweepRow& r : rows) {
    Json row;
    row["bar_size"] = r.barSize;
    row["alignment"] = r.alignment;
    row["design"] = std::string(designName(r.design));
    row.update(sim::probeResultToJson(r.result));
    const DmaMapEstimate d = sim::estimateDmaMap(r.result.touch, r.barSize, 0, r.barSize);
    row["dma_map"] = dmaMapToJson(d);
    rs.push_back(row);
  }
  j["rows"] = rs;
  return j;
}

std::string sweepToCsv(const std::vector<SweepRow>& rows) {
  std::string out = "bar_size,alignment,design,profile,address,sampled,sampled_fraction,phase";
  const Json header = sim::phaseToJson(Metrics{});
  for (const auto& [key, v] : header.items()) {
    out += ',';
    out += key;
  }
  // The DMA map of the point (sim/dma_map_estimate.h), the same on each of its lines.
  out += ",dma_lookups_per_4k,dma_lookups_per_leaf,dma_modeled_ns_per_4k,dma_modeled_ns_per_leaf\n";
  for (const SweepRow& r : rows) {
    const std::pair<const char*, const Metrics*> phases[] = {
        {"touch", &r.result.touch}, {"toggle", &r.result.toggle}, {"retouch", &r.result.retouch}};
    for (const auto& [name, m] : phases) {
      out += fmt::format("{},{},{},{},{:#x},{},{:.6g},{}", r.barSize, r.alignment,
                         designName(r.design), r.result.profile, r.result.address, r.result.sampled,
                         r.result.sampledFraction, name);
      const Json values = sim::phaseToJson(*m);
      for (const auto& [key, v] : values.items()) {
        out += ',';
        out += v.dump();
      }
      const DmaMapEstimate d = sim::estimateDmaMap(r.result.touch, r.barSize, 0, r.barSize);
      out += fmt::format(",{},{},{:.6g},{:.6g}\n", d.lookupsPer4K, d.lookupsPerLeaf,
                         d.modeledNsPer4K, d.modeledNsPerLeaf);
    }
  }
  return out;
}

namespace {

// One table of the summary: a row per design and alignment, a column per
// size in `cols`, each cell `cell` of the point swept there ("-" if none).
template <class Cell>
std::string summaryTable(const std::string& title, const std::vector<uint64_t>& cols,
                         const SweepOptions& options, const std::vector<SweepRow>& rows,
                         Cell cell) {
  std::string out = title + "\n";
  out += fmt::format("{:<14} {:<8}", "design", "align");
  for (uint64_t c : cols) out += fmt::format(" {:>22}", formatBytes(c));
  out += "\n";
  for (DesignKind d : options.designs) {
    for (const std::string& a : options.alignments) {
      out += fmt::format("{:<14} {:<8}", designName(d), a);
      for (uint64_t c : cols) {
        auto it = std::find_if(rows.begin(), rows.end(), [&](const SweepRow& r) {
          return r.barSize == c && r.alignment == a && r.design == d;
        });
        out += fmt::format(" {:>22}", it == rows.end() ? std::string("-") : cell(*it));
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace

std::string sweepSummary(const SweepOptions& options, const std::vector<SweepRow>& rows) {
  // Up to five sizes, evenly spread over the swept ones, smallest and largest included.
  std::vector<uint64_t> cols;
  const size_t n = options.sizes.size();
  const size_t k = std::min<size_t>(5, n);
  for (size_t i = 0; i < k; ++i) cols.push_back(options.sizes[k == 1 ? 0 : i * (n - 1) / (k - 1)]);
  std::string out = summaryTable(
      "first touch: faults / modelled time (* = sampled and scaled to the whole BAR)", cols,
      options, rows, [](const SweepRow& r) {
        return fmt::format("{}{} / {:.3g} ms", r.result.touch.faults, r.result.sampled ? "*" : "",
                           r.result.touch.modeledNs / 1e6);
      });
  out += "\n";
  out += summaryTable(
      "DMA map (type1 MAP_DMA of the unpopulated BAR): lookups until 6.14 / from 6.15", cols,
      options, rows, [](const SweepRow& r) {
        const DmaMapEstimate e = sim::estimateDmaMap(r.result.touch, r.barSize, 0, r.barSize);
        return fmt::format("{} / {}", e.lookupsPer4K, e.lookupsPerLeaf);
      });
  size_t sampled = 0;
  for (const SweepRow& r : rows) sampled += r.result.sampled ? 1 : 0;
  if (sampled != 0)
    out += fmt::format(
        "{} of {} points sampled: BARs over {} are measured cut down to their partial 1 GiB blocks "
        "(or one whole "
        "block) and to one block more, and extrapolated along that line to the whole BAR "
        "(docs/sweep.md)\n",
        sampled, rows.size(), formatBytes(options.sampleAbove));
  return out;
}

namespace {

// The first touch of every design at one alignment, against BAR size.
std::string alignmentCharts(const SweepOptions& options, const std::vector<SweepRow>& rows,
                            const std::string& align) {
  svg::LineChartSpec faults{fmt::format("faults of one full touch, {} alignment", align),
                            "BAR size (bytes)",
                            "faults",
                            true,
                            true,
                            {},
                            {}};
  svg::LineChartSpec time{fmt::format("modelled time of one full touch, {} alignment", align),
                          "BAR size (bytes)",
                          "modelled time (ns)",
                          true,
                          true,
                          {},
                          {}};
  for (DesignKind d : options.designs) {
    svg::Series f{std::string(designName(d)), {}};
    svg::Series t{std::string(designName(d)), {}};
    for (const SweepRow& r : rows) {
      if (r.alignment != align || r.design != d) continue;
      f.points.emplace_back(static_cast<double>(r.barSize),
                            static_cast<double>(r.result.touch.faults));
      t.points.emplace_back(static_cast<double>(r.barSize), r.result.touch.modeledNs);
    }
    faults.series.push_back(f);
    time.series.push_back(t);
  }
  return svg::lineChart(faults) + svg::lineChart(time);
}

}  // namespace

std::string sweepReportHtml(const SweepOptions& options, const std::vector<SweepRow>& rows) {
  std::vector<HtmlSection> sections;
  std::string sampled;
  for (const SweepRow& r : rows)
    if (r.result.sampled)
      sampled +=
          fmt::format("<li>{} {} {}: measured {:.3g} of the BAR</li>", formatBytes(r.barSize),
                      r.alignment, designName(r.design), r.result.sampledFraction);
  sections.push_back(HtmlSection{
      "What was measured",
      "<p>Each point: one device with one 64-bit prefetchable BAR, mapped whole at an address "
      "aligned to exactly "
      "the given alignment (natural: QEMU 9.2's placement); one load in every 4 KiB page, memory "
      "decode off and on, "
      "the same touch again. Faults and modelled time below are of the first touch.</p>" +
          (sampled.empty()
               ? std::string("<p>No point was sampled: every count is exact.</p>")
               : "<p>Sampled points (extrapolated from two cut-down runs, exact for the model's "
                 "periodic blocks; docs/sweep.md):</p><ul>" +
                     sampled + "</ul>")});
  for (const std::string& a : options.alignments)
    sections.push_back(
        HtmlSection{fmt::format("{} alignment", a), alignmentCharts(options, rows, a)});
  sections.push_back(
      HtmlSection{"Summary", "<pre>" + htmlEscape(sweepSummary(options, rows)) + "</pre>"});
  return renderHtmlPage("vfiomm sweep", sections);
}

}  // namespace vfiomm::report
