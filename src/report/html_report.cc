#include "report/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <functional>
#include <limits>

#include "base/html_escape.h"
#include "report/report.h"
#include "report/svg_chart.h"

namespace vfiomm::report {

using sim::BarDef;
using sim::DesignResult;
using sim::DeviceDef;
using sim::Metrics;
using sim::PhaseResult;
using sim::Scenario;
using sim::TimelineSample;

namespace {

// A log scale once the positive values span two decades or more: below
// that a linear one reads better.
constexpr double kLogSpan = 100;

bool spansDecades(const std::vector<double>& values) {
  double lo = std::numeric_limits<double>::infinity();
  double hi = 0;
  for (double v : values) {
    if (!(v > 0)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  return hi > 0 && hi / lo >= kLogSpan;
}

std::string anchorOf(const std::string& title) {
  std::string id = "s-";
  for (char c : title) {
    const auto u = static_cast<unsigned char>(c);
    id.push_back(std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '-');
  }
  return id;
}

std::string sizeText(uint64_t bytes) {
  if (bytes >= (1ULL << 30) && bytes % (1ULL << 30) == 0) return fmt::format("{} GiB", bytes >> 30);
  if (bytes >= (1ULL << 20) && bytes % (1ULL << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  if (bytes >= (1ULL << 10) && bytes % (1ULL << 10) == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} B", bytes);
}

std::string scenarioSection(const Scenario& sc) {
  std::string h = "<dl class=\"facts\">";
  auto fact = [&h](const std::string& key, const std::string& value) {
    h += fmt::format("<dt>{}</dt><dd>{}</dd>", htmlEscape(key), htmlEscape(value));
  };
  fact("scenario", sc.name);
  if (!sc.description.empty()) fact("description", sc.description);
  fact("file", sc.file.empty() ? "(built-in default)" : sc.file);
  fact("profile", sc.profile.empty() ? "each design's own" : sc.profile);
  fact("CPUs", std::to_string(sc.cpus));
  fact("THP", sc.thp ? "on" : "off");
  for (const DeviceDef& d : sc.devices) {
    std::string bars;
    for (const BarDef& b : d.bars)
      bars += fmt::format("{}BAR{} {}", bars.empty() ? "" : ", ", b.index, sizeText(b.size));
    fact("device " + d.name, bars.empty() ? "no BARs" : bars);
  }
  fact("processes", std::to_string(sc.processes.size()));
  std::string phases;
  for (size_t i = 0; i < sc.phases.size(); ++i)
    phases += fmt::format("{}{}. {}", i == 0 ? "" : ", ", i + 1, sc.phases[i].name);
  fact("phases", phases);
  return h + "</dl>";
}

void tableBlock(std::string& h, const std::string& heading,
                const std::vector<DesignResult>& results,
                const std::function<const Metrics&(const DesignResult&)>& get) {
  h += fmt::format("<tbody><tr class=\"block\"><th colspan=\"{}\">{}</th></tr>", results.size() + 1,
                   htmlEscape(heading));
  for (const MetricRow& row : metricRows()) {
    h += fmt::format("<tr><th scope=\"row\">{}</th>", htmlEscape(row.label));
    for (const DesignResult& r : results)
      h += fmt::format("<td>{}</td>", htmlEscape(row.cell(get(r))));
    h += "</tr>";
  }
  h += "</tbody>";
}

std::string tableHead(const std::vector<DesignResult>& results) {
  std::string h = "<table class=\"metrics\"><thead><tr><th></th>";
  for (const DesignResult& r : results) {
    h += fmt::format("<th scope=\"col\"{}>{}</th>", r.failed ? " class=\"failed\"" : "",
                     htmlEscape(std::string(designName(r.design))));
  }
  h += "</tr><tr><th scope=\"row\">profile</th>";
  for (const DesignResult& r : results) h += fmt::format("<td>{}</td>", htmlEscape(r.profile));
  return h + "</tr></thead>";
}

std::string tableSection(const std::vector<DesignResult>& results) {
  if (results.empty()) return "<p>No design ran.</p>";
  // The totals first; the phases fold away so the charts stay near the top.
  std::string h = tableHead(results);
  tableBlock(h, "total", results, [](const DesignResult& r) -> const Metrics& { return r.total; });
  h += "</table><details><summary>per phase</summary>" + tableHead(results);
  for (size_t p = 0; p < results.front().phases.size(); ++p) {
    tableBlock(h, fmt::format("phase {} {}", p + 1, results.front().phases[p].name), results,
               [p](const DesignResult& r) -> const Metrics& { return r.phases.at(p).m; });
  }
  h += "</table></details>";
  std::string notes;
  for (const DesignResult& r : results) {
    const std::string design(designName(r.design));
    if (r.failed) {
      notes += fmt::format(
          "<li class=\"failed\">FAIL {}: {} invariant-1 violations, {} lockdep reports where there "
          "should be none</li>",
          htmlEscape(design), r.total.violations, r.total.lockdepReports);
    }
    for (const std::string& n : r.setupNotes)
      notes += fmt::format("<li>{}: setup: {}</li>", htmlEscape(design), htmlEscape(n));
    for (const PhaseResult& p : r.phases)
      for (const std::string& n : p.notes)
        notes += fmt::format("<li>{}: phase {}: {}</li>", htmlEscape(design), htmlEscape(p.name),
                             htmlEscape(n));
  }
  if (!notes.empty()) h += "<ul class=\"notes\">" + notes + "</ul>";
  return h;
}

std::string pageSizeSection(const std::vector<DesignResult>& results) {
  svg::BarChartSpec spec;
  spec.title = "Page-table entries inserted, by page size";
  spec.yLabel = "entries inserted (count)";
  spec.seriesNames = {"PTE (4 KiB)", "PMD (2 MiB)", "PUD (1 GiB)", "huge fallbacks"};
  std::vector<double> all;
  for (const DesignResult& r : results) {
    const Metrics& m = r.total;
    svg::BarGroup g{std::string(designName(r.design)),
                    {static_cast<double>(m.pte), static_cast<double>(m.pmd),
                     static_cast<double>(m.pud), static_cast<double>(m.fallback)}};
    all.insert(all.end(), g.values.begin(), g.values.end());
    spec.groups.push_back(std::move(g));
  }
  spec.logY = spansDecades(all);
  return svg::barChart(spec) +
         "<p class=\"how\">Bars side by side per design, over the whole run; a missing bar is a "
         "zero."
         " Fewer, larger entries mean fewer faults for the same BAR.</p>";
}

std::string modelledTimeSection(const std::vector<DesignResult>& results) {
  std::vector<double> phaseNs;
  for (const DesignResult& r : results)
    for (const PhaseResult& p : r.phases) phaseNs.push_back(p.m.modeledNs);
  svg::BarChartSpec spec;
  // Stacked, a bar is the run's total; but stacked segments on a log scale
  // would not read as their values, so phases spanning decades stand side
  // by side instead.
  spec.logY = spansDecades(phaseNs);
  spec.stacked = !spec.logY;
  spec.title = "Modelled time per design, by phase";
  spec.yLabel = "modelled time (ns)";  // ticks read in ns, us, ms or s
  if (!results.empty())
    for (const PhaseResult& p : results.front().phases) spec.seriesNames.push_back(p.name);
  for (const DesignResult& r : results) {
    svg::BarGroup g{std::string(designName(r.design)), {}};
    for (const PhaseResult& p : r.phases) g.values.push_back(p.m.modeledNs);
    spec.groups.push_back(std::move(g));
  }
  const char* how =
      spec.stacked
          ? "One bar per design, one segment per phase; the bar's height is the run's modelled time"
          : "One bar per phase for each design, on a log scale since the times span decades";
  return svg::barChart(spec) +
         fmt::format(
             "<p class=\"how\">{} (the cost model of docs/cost-model.md applied "
             "to the counted events).</p>",
             how);
}

// Whether any design DMA-mapped something: the DMA section is left out of
// runs that never did.
bool anyDmaMap(const std::vector<DesignResult>& results) {
  return std::any_of(results.begin(), results.end(), [](const DesignResult& r) {
    return r.total.dmaLookups + r.total.iommuMaps != 0;
  });
}

std::string dmaMapSection(const std::vector<DesignResult>& results) {
  svg::BarChartSpec counts;
  counts.title = "DMA map: lookups and IOPTEs by size";
  counts.yLabel = "lookups, faults and IOPTEs (count)";
  counts.seriesNames = {"vaddr_get_pfns lookups", "faults taken by the map", "IOPTE 4 KiB",
                        "IOPTE 2 MiB", "IOPTE 1 GiB"};
  svg::BarChartSpec time;
  time.title = "DMA map: modelled time per design";
  time.yLabel = "modelled DMA-map time (ns)";
  time.seriesNames = {"DMA map"};
  std::vector<double> allCounts;
  std::vector<double> allTimes;
  for (const DesignResult& r : results) {
    const Metrics& m = r.total;
    svg::BarGroup g{std::string(designName(r.design)),
                    {static_cast<double>(m.dmaLookups), static_cast<double>(m.dmaFaults),
                     static_cast<double>(m.iopte4k), static_cast<double>(m.iopte2m),
                     static_cast<double>(m.iopte1g)}};
    allCounts.insert(allCounts.end(), g.values.begin(), g.values.end());
    counts.groups.push_back(std::move(g));
    time.groups.push_back({std::string(designName(r.design)), {m.dmaModeledNs}});
    allTimes.push_back(m.dmaModeledNs);
  }
  counts.logY = spansDecades(allCounts);
  time.logY = spansDecades(allTimes);
  return svg::barChart(counts) +
         "<p class=\"how\">Over the whole run, per design: type1's lookups of the mapped range "
         "(one per 4 KiB page before 6.15, one per leaf after), the faults the map itself took, "
         "and "
         "the IOPTEs the IOMMU installed by size; a missing bar is a zero.</p>" +
         svg::barChart(time) +
         "<p class=\"how\">The DMA map's share of the modelled time (docs/cost-model.md).</p>";
}

std::string timelineChart(const DesignResult& r) {
  svg::LineChartSpec spec;
  spec.title = fmt::format("Timeline: {}", designName(r.design));
  spec.xLabel = "modelled time since the first phase (ns)";  // ticks read in ns, us, ms or s
  spec.yLabel = "events so far (count)";
  spec.series = {{"faults", {}}, {"zaps", {}}, {"zapped entries", {}}, {"TLB shootdowns", {}}};
  std::vector<double> all;
  size_t lastPhase = std::numeric_limits<size_t>::max();
  for (const TimelineSample& s : r.timeline) {
    const double x = s.modeledNs;
    const double ys[] = {static_cast<double>(s.faults), static_cast<double>(s.zaps),
                         static_cast<double>(s.zappedEntries), static_cast<double>(s.shootdowns)};
    for (size_t i = 0; i < spec.series.size(); ++i) {
      spec.series[i].points.emplace_back(x, ys[i]);
      all.push_back(ys[i]);
    }
    if (s.phase != lastPhase && s.phase < r.phases.size())
      spec.xMarks.emplace_back(x, r.phases[s.phase].name);
    lastPhase = s.phase;
  }
  spec.logY = spansDecades(all);
  return svg::lineChart(spec);
}

std::string timelineSection(const std::vector<DesignResult>& results) {
  std::string h =
      "<p class=\"how\">Counters summed from the start of the first phase, sampled while the "
      "phases ran "
      "(every few milliseconds of wall time and after every event); dashed lines mark where each "
      "phase "
      "starts. The x axis is modelled time, so a flat stretch is time spent on other events.</p>";
  for (const DesignResult& r : results) h += timelineChart(r);
  return h;
}

constexpr const char* kStyle = R"css(
body { font-family: sans-serif; margin: 0 auto; max-width: 1120px; padding: 0 16px 40px; color: #222; }
h1 { font-size: 1.6em; margin: 20px 0 8px; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 32px; }
nav ol { padding-left: 20px; margin: 4px 0; }
nav li { display: inline; margin-right: 16px; }
svg.chart { display: block; width: 100%; max-width: 1000px; height: auto; margin: 12px 0; background: #fff; }
table.metrics { border-collapse: collapse; font-size: 0.9em; }
table.metrics th, table.metrics td { border: 1px solid #ddd; padding: 3px 8px; }
table.metrics td { text-align: right; font-variant-numeric: tabular-nums; }
table.metrics th[scope=row] { text-align: left; font-weight: normal; white-space: pre; }
table.metrics tr.block th { background: #f0f3f7; text-align: left; }
.failed { color: #b00020; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; }
p.how { color: #555; font-size: 0.9em; max-width: 760px; }
)css";

}  // namespace

std::string renderHtmlPage(const std::string& title, const std::vector<HtmlSection>& sections) {
  std::string toc;
  std::string body;
  for (const HtmlSection& s : sections) {
    const std::string id = anchorOf(s.title);
    toc += fmt::format("<li><a href=\"#{}\">{}</a></li>", id, htmlEscape(s.title));
    body += fmt::format("<section id=\"{}\"><h2>{}</h2>\n{}\n</section>\n", id, htmlEscape(s.title),
                        s.html);
  }
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, "
      "initial-scale=1\">\n<title>{}</title>\n"
      "<style>{}</style>\n</head>\n<body>\n<h1>{}</h1>\n<nav><ol>{}</ol></nav>\n{}</body>\n</"
      "html>\n",
      htmlEscape(title), kStyle, htmlEscape(title), toc, body);
}

std::vector<HtmlSection> comparisonSections(const Scenario& sc,
                                            const std::vector<DesignResult>& results) {
  std::vector<HtmlSection> sections = {
      {"Scenario", scenarioSection(sc)},
      {"Comparison", tableSection(results)},
      {"Faults by page size", pageSizeSection(results)},
      {"Modelled time", modelledTimeSection(results)},
  };
  if (anyDmaMap(results)) sections.push_back({"DMA map", dmaMapSection(results)});
  sections.push_back({"Timeline", timelineSection(results)});
  return sections;
}

}  // namespace vfiomm::report
