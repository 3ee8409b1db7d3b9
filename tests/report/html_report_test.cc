// The SVG charts, the HTML page and the timeline the runner records for it
// (issue 7). The browser test of the real report is
// tests/report/chromium_report_test.sh.
#include "report/html_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <regex>
#include <string>

#include "base/html_escape.h"
#include "report/report.h"
#include "report/svg_chart.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "sim/timeline.h"

namespace vfiomm::sim {
namespace {

using report::comparisonSections;
using report::designResultToJson;
using report::HtmlSection;
using report::kJsonSchemaVersion;
using report::metricsToJson;
using report::renderHtmlPage;
namespace svg = report::svg;

using ::testing::HasSubstr;
using ::testing::Not;

// Every number a chart prints must be finite: "nan" or "inf" in the SVG
// would make a browser drop the element silently.
void expectAllFinite(const std::string& svgText) {
  // As a word: "dominant-baseline" and "info" are fine.
  static const std::regex kNonFinite(R"((^|[^a-zA-Z])(nan|inf)([^a-zA-Z]|$))", std::regex::icase);
  EXPECT_FALSE(std::regex_search(svgText, kNonFinite)) << svgText;
}

std::vector<std::string> labels(const std::vector<svg::Tick>& ticks) {
  std::vector<std::string> out;
  for (const svg::Tick& t : ticks) out.push_back(t.label);
  return out;
}

TEST(SvgChart, EscapesMarkup) {
  EXPECT_EQ(htmlEscape(R"(<a & 'b' "c">)"), "&lt;a &amp; &#39;b&#39; &quot;c&quot;&gt;");
  svg::LineChartSpec spec;
  spec.title = "<script>x</script>";
  spec.series = {{"a&b", {{1, 2}}}};
  const std::string out = svg::lineChart(spec);
  EXPECT_THAT(out, Not(HasSubstr("<script>")));
  EXPECT_THAT(out, HasSubstr("&lt;script&gt;"));
  EXPECT_THAT(out, HasSubstr("a&amp;b"));
}

TEST(SvgChart, LinearTicksStepOneTwoFive) {
  EXPECT_EQ(labels(svg::axisTicks(0, 97, false, svg::AxisUnit::kPlain)),
            (std::vector<std::string>{"0", "20", "40", "60", "80", "100"}));
  EXPECT_EQ(labels(svg::axisTicks(0, 2.4e6, false, svg::AxisUnit::kPlain)),
            (std::vector<std::string>{"0", "0.5M", "1.0M", "1.5M", "2.0M", "2.5M"}));
  // A single value still gets an axis around it.
  EXPECT_GE(svg::axisTicks(5, 5, false, svg::AxisUnit::kPlain).size(), 2U);
}

TEST(SvgChart, LinearByteTicksStepInBinaryUnits) {
  EXPECT_EQ(labels(svg::axisTicks(0, 1 << 30, false, svg::AxisUnit::kBytes)),
            (std::vector<std::string>{"0", "0.2 GiB", "0.4 GiB", "0.6 GiB", "0.8 GiB", "1.0 GiB"}));
  EXPECT_EQ(labels(svg::axisTicks(0, 3 << 20, false, svg::AxisUnit::kBytes)),
            (std::vector<std::string>{"0", "1 MiB", "2 MiB", "3 MiB"}));
}

TEST(SvgChart, TimeTicksReadInTimeUnits) {
  EXPECT_EQ(svg::axisUnitOf("modelled time (ns)"), svg::AxisUnit::kNanoseconds);
  EXPECT_EQ(svg::axisUnitOf("BAR size (bytes)"), svg::AxisUnit::kBytes);
  EXPECT_EQ(svg::axisUnitOf("faults (count)"), svg::AxisUnit::kPlain);
  EXPECT_EQ(
      labels(svg::axisTicks(20, 3e6, true, svg::AxisUnit::kNanoseconds)),
      (std::vector<std::string>{"10 ns", "100 ns", "1 us", "10 us", "100 us", "1 ms", "10 ms"}));
  EXPECT_EQ(labels(svg::axisTicks(0, 2.2e9, false, svg::AxisUnit::kNanoseconds)),
            (std::vector<std::string>{"0", "0.5 s", "1.0 s", "1.5 s", "2.0 s", "2.5 s"}));
}

TEST(SvgChart, LogTicksAreDecades) {
  EXPECT_EQ(labels(svg::axisTicks(3, 4500, true, svg::AxisUnit::kPlain)),
            (std::vector<std::string>{"1", "10", "100", "1K", "10K"}));
  // Many decades: at most about ten labels, still powers of ten.
  const auto wide = svg::axisTicks(1, 1e15, true, svg::AxisUnit::kPlain);
  EXPECT_LE(wide.size(), 11U);
  for (const svg::Tick& t : wide)
    EXPECT_DOUBLE_EQ(std::pow(10, std::round(std::log10(t.value))), t.value);
}

TEST(SvgChart, LogByteTicksArePowersOfTwo) {
  const auto ticks = svg::axisTicks(4096, 1 << 30, true, svg::AxisUnit::kBytes);
  ASSERT_FALSE(ticks.empty());
  EXPECT_EQ(ticks.front().label, "4 KiB");
  EXPECT_EQ(ticks.back().label, "1 GiB");
  EXPECT_LE(ticks.size(), 11U);
  EXPECT_EQ(labels(svg::axisTicks(4096, 2 << 20, true, svg::AxisUnit::kBytes)).at(1), "8 KiB");
}

TEST(SvgChart, LineChartCountsDrawnPoints) {
  svg::LineChartSpec spec;
  spec.title = "t";
  spec.xLabel = "x (s)";
  spec.yLabel = "y (count)";
  spec.series = {{"a", {{0, 1}, {1, 2}, {2, 3}}}, {"b", {{0, 5}, {2, 7}}}};
  const std::string out = svg::lineChart(spec);
  EXPECT_THAT(out, HasSubstr(R"(class="chart" data-points="5")"));
  EXPECT_THAT(out, HasSubstr("x (s)"));
  EXPECT_THAT(out, HasSubstr("y (count)"));
  EXPECT_THAT(out, Not(HasSubstr("no data")));
  expectAllFinite(out);
}

TEST(SvgChart, LogAxisSkipsZeroNegativeAndNonFinite) {
  svg::LineChartSpec spec;
  spec.logX = true;
  spec.logY = true;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  spec.series = {{"a", {{1, 0}, {10, 100}, {100, -3}, {1000, 1e6}, {nan, 5}, {5, inf}, {-1, 4}}}};
  spec.xMarks = {{0, "at zero"}, {10, "ten"}};
  const std::string out = svg::lineChart(spec);
  EXPECT_THAT(out, HasSubstr(R"(data-points="2")"));
  EXPECT_THAT(out, HasSubstr(">ten<"));
  EXPECT_THAT(out, Not(HasSubstr("at zero")));  // x = 0 is not on a log axis
  expectAllFinite(out);
}

TEST(SvgChart, EmptyChartsSayNoData) {
  svg::LineChartSpec line;
  line.series = {{"empty", {}}};
  line.logY = true;
  const std::string l = svg::lineChart(line);
  EXPECT_THAT(l, HasSubstr(R"(data-points="0")"));
  EXPECT_THAT(l, HasSubstr("no data"));
  EXPECT_THAT(l, HasSubstr(">empty<"));  // still in the legend
  expectAllFinite(l);

  const std::string nothing = svg::lineChart({});
  EXPECT_THAT(nothing, HasSubstr(R"(data-points="0")"));
  expectAllFinite(nothing);

  svg::BarChartSpec bars;
  bars.logY = true;
  bars.stacked = true;
  bars.seriesNames = {"a"};
  bars.groups = {{"g", {0}}};
  const std::string b = svg::barChart(bars);
  EXPECT_THAT(b, HasSubstr(R"(data-points="0")"));
  expectAllFinite(b);
  expectAllFinite(svg::barChart({}));
}

TEST(SvgChart, BarChartCountsBars) {
  svg::BarChartSpec spec;
  spec.title = "bars";
  spec.yLabel = "entries (count)";
  spec.seriesNames = {"4K", "2M", "1G"};
  spec.groups = {{"one", {1000, 0, 2}}, {"two", {5, 6}}};  // a zero and a missing value
  for (bool logY : {false, true}) {
    for (bool stacked : {false, true}) {
      spec.logY = logY;
      spec.stacked = stacked;
      const std::string out = svg::barChart(spec);
      EXPECT_THAT(out, HasSubstr(R"(data-points="4")")) << logY << stacked;
      EXPECT_EQ(out.find("no data"), std::string::npos);
      expectAllFinite(out);
    }
  }
}

TEST(SvgChart, PaletteColoursDiffer) {
  for (size_t i = 0; i < 8; ++i)
    for (size_t j = i + 1; j < 8; ++j) EXPECT_NE(svg::seriesColour(i), svg::seriesColour(j));
}

TEST(PhaseTimeline, KeepsStartAndEndAndStaysEvenlySpread) {
  PhaseTimeline t(50);
  for (uint64_t i = 0; i < 1000; ++i) t.offer(TimelineSample{0, i, 0, 0, 0, 0});
  const auto kept = t.finish(TimelineSample{0, 5000, 0, 0, 0, 0});
  ASSERT_LE(kept.size(), 50U);
  ASSERT_GE(kept.size(), 25U);
  EXPECT_EQ(kept.front().faults, 0U);
  EXPECT_EQ(kept.back().faults, 5000U);
  const uint64_t step = kept[1].faults - kept[0].faults;
  for (size_t i = 1; i + 1 < kept.size(); ++i) EXPECT_EQ(kept[i].faults - kept[i - 1].faults, step);
}

TEST(PhaseTimeline, ShortPhaseKeepsEverything) {
  PhaseTimeline t;
  t.offer(TimelineSample{});
  t.offer(TimelineSample{0, 1, 0, 0, 0, 0});
  EXPECT_EQ(t.finish(TimelineSample{0, 2, 0, 0, 0, 0}).size(), 3U);
}

// A small scenario: touch a 2 MiB BAR, reset the device, touch it again.
constexpr const char* kSmall = R"(
name: small
cpus: 2
devices:
  - name: nic
    bus: 3
    bars:
      - {index: 0, size: 2M, type: mem64}
processes:
  - name: app
    open: [nic]
    mappings:
      - {name: bar0, device: nic, bar: 0}
phases:
  - name: touch
    threads:
      - {name: t0, process: app, cpu: 0, pattern: sequential, stride: 4K}
  - name: reset
    events:
      - {type: reset, device: nic, process: app}
  - name: retouch
    threads:
      - {name: t0, process: app, cpu: 0, pattern: sequential, stride: 4K}
)";

TEST(RunnerTimeline, SamplesEveryPhaseAndEndsAtTheTotals) {
  const Scenario sc = parseScenario(kSmall, "small");
  const DesignResult r = runScenario(sc, DesignKind::kAddressSpace);
  ASSERT_EQ(r.phases.size(), 3U);
  ASSERT_GE(r.timeline.size(), 6U);  // a start and an end sample per phase
  EXPECT_EQ(r.timeline.front().phase, 0U);
  EXPECT_EQ(r.timeline.front().faults, 0U);
  EXPECT_EQ(r.timeline.front().modeledNs, 0);
  Metrics cumulative;
  size_t phase = 0;
  for (size_t i = 0; i < r.timeline.size(); ++i) {
    const TimelineSample& s = r.timeline[i];
    if (i != 0) {
      EXPECT_GE(s.phase, r.timeline[i - 1].phase);
      EXPECT_GE(s.faults, r.timeline[i - 1].faults);
      EXPECT_GE(s.modeledNs, r.timeline[i - 1].modeledNs);
    }
    const bool lastOfPhase = i + 1 == r.timeline.size() || r.timeline[i + 1].phase != s.phase;
    if (!lastOfPhase) continue;
    // A phase's end sample is the counters of every phase up to it.
    ASSERT_EQ(s.phase, phase);
    cumulative.add(r.phases[phase].m);
    EXPECT_EQ(s.faults, cumulative.faults);
    EXPECT_EQ(s.zaps, cumulative.zaps);
    EXPECT_EQ(s.zappedEntries, cumulative.zappedEntries);
    EXPECT_EQ(s.shootdowns, cumulative.shootdowns);
    EXPECT_NEAR(s.modeledNs, cumulative.modeledNs, 1e-6 * cumulative.modeledNs);
    ++phase;
  }
  EXPECT_EQ(phase, 3U);
  EXPECT_GT(r.total.faults, 0U);
  EXPECT_GT(r.total.zaps, 0U);  // the reset zapped what the touch mapped
}

// Schema version 2: entries inserted are not faults and are not filed under them.
TEST(ResultsJson, InsertedEntriesStandApartFromFaults) {
  Metrics m;
  m.faults = 3;
  m.pte = 8400896;
  m.pmd = 24;
  m.pud = 32;
  m.fallback = 1;
  const nlohmann::ordered_json j = metricsToJson(m);
  EXPECT_EQ(j.at("faults"), (nlohmann::ordered_json{{"minor", 3}, {"fallback", 1}}));
  EXPECT_EQ(j.at("inserted_entries"),
            (nlohmann::ordered_json{{"pte", 8400896}, {"pmd", 24}, {"pud", 32}}));
  EXPECT_EQ(kJsonSchemaVersion, 2);
}

TEST(RunnerTimeline, IsWrittenToTheJson) {
  DesignResult r;
  r.phases = {PhaseResult{"p", {}, {}}};
  r.timeline = {{0, 1, 2, 3, 4, 5.5}, {0, 10, 20, 30, 40, 50.25}};
  const nlohmann::ordered_json j = designResultToJson(r);
  ASSERT_EQ(j.at("timeline").size(), 2U);
  const nlohmann::ordered_json& s = j.at("timeline")[1];
  EXPECT_EQ(s.at("faults"), 10U);
  EXPECT_EQ(s.at("zaps"), 20U);
  EXPECT_EQ(s.at("zapped_entries"), 30U);
  EXPECT_EQ(s.at("shootdowns"), 40U);
  EXPECT_EQ(s.at("modeled_ns"), 50.25);
}

// Two designs' worth of made-up results, enough for every section.
std::vector<DesignResult> madeUpResults(const Scenario& sc) {
  std::vector<DesignResult> out;
  for (DesignKind d : {DesignKind::kVmaList, DesignKind::kHugeFault}) {
    DesignResult r;
    r.design = d;
    r.profile = "v6.12";
    for (size_t p = 0; p < sc.phases.size(); ++p) {
      PhaseResult pr;
      pr.name = sc.phases[p].name;
      pr.m.faults = 512 * (p + 1);
      pr.m.pte = d == DesignKind::kVmaList ? 512 : 0;
      pr.m.pmd = d == DesignKind::kVmaList ? 0 : 1;
      pr.m.zaps = p;
      pr.m.modeledNs = 1e6 * static_cast<double>(p + 1);
      r.total.add(pr.m);
      r.phases.push_back(pr);
      r.timeline.push_back(
          {p, r.total.faults - pr.m.faults, 0, 0, 0, r.total.modeledNs - pr.m.modeledNs});
      r.timeline.push_back({p, r.total.faults, r.total.zaps, 0, 0, r.total.modeledNs});
    }
    out.push_back(r);
  }
  out.back().phases.back().notes.push_back("mmap failed: <EINVAL>");
  return out;
}

TEST(HtmlReport, PageIsSelfContained) {
  const Scenario sc = parseScenario(kSmall, "small");
  const std::string page =
      renderHtmlPage("vfiomm: small", comparisonSections(sc, madeUpResults(sc)));
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0U);
  for (const char* external :
       {"http://", "https://", "<script", "@import", "url(", "src=", "<link"})
    EXPECT_EQ(page.find(external), std::string::npos) << external;
  EXPECT_THAT(page, HasSubstr("&lt;EINVAL&gt;"));  // notes are escaped
  EXPECT_THAT(page, HasSubstr("</html>"));
}

TEST(HtmlReport, ComparisonHasEveryChartDrawn) {
  const Scenario sc = parseScenario(kSmall, "small");
  const auto sections = comparisonSections(sc, madeUpResults(sc));
  std::vector<std::string> titles;
  for (const HtmlSection& s : sections) titles.push_back(s.title);
  EXPECT_EQ(titles, (std::vector<std::string>{"Scenario", "Comparison", "Faults by page size",
                                              "Modelled time", "Timeline"}));
  const std::string page = renderHtmlPage("t", sections);
  // Page sizes, modelled time, one timeline per design.
  size_t charts = 0;
  for (size_t at = page.find("class=\"chart\""); at != std::string::npos;
       at = page.find("class=\"chart\"", at + 1))
    ++charts;
  EXPECT_EQ(charts, 4U);
  EXPECT_EQ(page.find("data-points=\"0\""), std::string::npos);
  EXPECT_THAT(sections[1].html, HasSubstr("huge-fault"));
  EXPECT_THAT(sections[1].html, HasSubstr("modelled time"));
  EXPECT_THAT(sections[3].html, HasSubstr("modelled time (ns)"));
  EXPECT_THAT(sections[3].html, HasSubstr(">2 ms<"));     // a tick in the unit that reads best
  EXPECT_THAT(sections[4].html, HasSubstr(">retouch<"));  // a phase-start marker
  expectAllFinite(page);
}

// A run that DMA-mapped something gets the DMA section: lookups, faults
// and IOPTEs by size, and the DMA map's modelled time, per design.
TEST(HtmlReport, ADmaMapGetsItsOwnSection) {
  const Scenario sc = parseScenario(kSmall, "small");
  std::vector<DesignResult> results = madeUpResults(sc);
  results[0].total.dmaLookups = 8'388'608;  // a 32 GiB BAR, 4 KiB at a time
  results[0].total.iommuMaps = 1;
  results[0].total.iopte1g = 32;
  results[0].total.dmaModeledNs = 1e9;
  results[1].total.dmaLookups = 32;  // one per 1 GiB leaf
  results[1].total.iommuMaps = 1;
  results[1].total.iopte1g = 32;
  results[1].total.dmaModeledNs = 5e5;
  const auto sections = comparisonSections(sc, results);
  std::vector<std::string> titles;
  for (const HtmlSection& s : sections) titles.push_back(s.title);
  EXPECT_EQ(titles, (std::vector<std::string>{"Scenario", "Comparison", "Faults by page size",
                                              "Modelled time", "DMA map", "Timeline"}));
  const std::string& dma = sections[4].html;
  EXPECT_THAT(dma, HasSubstr("vaddr_get_pfns lookups"));
  EXPECT_THAT(dma, HasSubstr("IOPTE 1 GiB"));
  EXPECT_THAT(dma, HasSubstr("modelled DMA-map time (ns)"));
  EXPECT_THAT(dma, HasSubstr(">1 s<")) << "a time tick in the unit that reads best";
  EXPECT_EQ(dma.find("data-points=\"0\""), std::string::npos);
  expectAllFinite(renderHtmlPage("t", sections));
}

TEST(HtmlReport, NoResultsStillRenders) {
  const Scenario sc = parseScenario(kSmall, "small");
  const std::string page = renderHtmlPage("t", comparisonSections(sc, {}));
  EXPECT_THAT(page, HasSubstr("No design ran."));
  expectAllFinite(page);
}

}  // namespace
}  // namespace vfiomm::sim
