#include "sim/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <numeric>
#include <sstream>

#include "sim/dma_map_estimate.h"
#include "sim/html_report.h"
#include "sim/output_file.h"
#include "sim/report.h"
#include "sim/scenario.h"
#include "sim/svg_chart.h"
#include "sim/work_pool.h"

namespace vfiomm::sim {

namespace {

using Json = nlohmann::ordered_json;

// Fixed placements start from here: 2 TiB-aligned and far below the
// mmap base, so base + alignment is aligned to exactly that alignment.
constexpr uint64_t kFixedBase = 0x7e00'0000'0000ULL;

bool isPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

uint64_t parseOneSize(const std::string& text, const std::string& whole) {
  const auto v = parseSize(text);
  if (!v || !isPowerOfTwo(*v) || *v < 4096)
    throw ScenarioError(fmt::format(
        "bad size '{}' in '{}': a power of two of at least 4K (e.g. 64K, 2M, 1G)", text, whole));
  return *v;
}

uint64_t naturalAlign(uint64_t length) {
  uint64_t a = 1;
  while (a <= length / 2) a <<= 1;
  return std::min(a, kGiB);
}

std::string trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(' ');
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(' ') + 1 - b);
}

}  // namespace

SweepOptions defaultSweepOptions() {
  SweepOptions o;
  for (uint64_t s = 64ULL << 10; s <= 128 * kGiB; s <<= 1) o.sizes.push_back(s);
  o.alignments = sweepAlignments();
  o.designs = allDesigns();
  return o;
}

std::vector<uint64_t> parseSizeList(const std::string& text) {
  std::vector<uint64_t> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    part = trimmed(part);
    const size_t dash = part.find('-');
    if (dash == std::string::npos) {
      out.push_back(parseOneSize(part, text));
      continue;
    }
    const uint64_t lo = parseOneSize(part.substr(0, dash), text);
    const uint64_t hi = parseOneSize(part.substr(dash + 1), text);
    if (lo > hi)
      throw ScenarioError(
          fmt::format("bad size range '{}': {} is above {}", part, formatSize(lo), formatSize(hi)));
    for (uint64_t s = lo; s <= hi && s != 0; s <<= 1) out.push_back(s);
  }
  if (out.empty()) throw ScenarioError(fmt::format("no sizes in '{}'", text));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> parseAlignmentList(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const std::string& n : names) {
    auto it =
        std::find_if(sweepAlignments().begin(), sweepAlignments().end(), [&](const std::string& a) {
          return a.size() == n.size() &&
                 std::equal(a.begin(), a.end(), n.begin(), [](char x, char y) {
                   return std::tolower(static_cast<unsigned char>(x)) ==
                          std::tolower(static_cast<unsigned char>(y));
                 });
        });
    if (it == sweepAlignments().end())
      throw ScenarioError(fmt::format("unknown alignment '{}' (known: 4K, 2M, 1G, natural)", n));
    out.push_back(*it);
  }
  return out.empty() ? sweepAlignments() : out;
}

ProbeSpec sweepPoint(uint64_t barSize, const std::string& alignment, DesignKind design,
                     const SweepOptions& options) {
  ProbeSpec p;
  p.design = design;
  p.barSize = barSize;
  p.sampleAbove = options.sampleAbove;
  p.cost = options.cost;
  if (alignment == "natural") {
    p.placement = Placement::kAligned;
    p.align = naturalAlign(barSize);
  } else {
    p.placement = Placement::kFixed;
    p.address = kFixedBase + *parseSize(alignment);
  }
  return p;
}

std::vector<SweepRow> runSweep(const SweepOptions& options,
                               const std::function<void(const SweepRow&)>& started) {
  std::vector<SweepRow> rows;
  for (uint64_t size : options.sizes)
    for (const std::string& a : options.alignments)
      for (DesignKind d : options.designs) rows.push_back(SweepRow{size, a, d, {}});
  // One job per exact point, and one per (alignment, design) whose larger
  // BARs are sampled: those share one sample, measured on the smallest of
  // them (the cut-down runs do not depend on the BAR beyond the cut).
  struct Job {
    size_t row;                // the exact point, or the smallest sampled one
    std::vector<size_t> rows;  // sampled: every row the sample serves
  };
  std::vector<Job> sampledJobs, exactJobs;
  for (size_t i = 0; i < rows.size(); ++i) {
    const ProbeSpec spec = sweepPoint(rows[i].barSize, rows[i].alignment, rows[i].design, options);
    // QEMU's placement puts the mapping at a multiple of its alignment.
    const uint64_t where = spec.placement == Placement::kFixed ? spec.address : kFixedBase;
    if (!isSampled(spec, where)) {
      exactJobs.push_back(Job{i, {}});
      continue;
    }
    auto same = std::find_if(sampledJobs.begin(), sampledJobs.end(), [&](const Job& j) {
      return rows[j.row].alignment == rows[i].alignment && rows[j.row].design == rows[i].design;
    });
    if (same == sampledJobs.end())
      sampledJobs.push_back(Job{i, {i}});
    else
      same->rows.push_back(i);
  }
  // The longest first, so they do not all end up at the end.
  std::stable_sort(exactJobs.begin(), exactJobs.end(), [&](const Job& x, const Job& y) {
    return rows[x.row].barSize > rows[y.row].barSize;
  });
  std::vector<Job> jobs = sampledJobs;
  jobs.insert(jobs.end(), exactJobs.begin(), exactJobs.end());
  auto specOf = [&](size_t i) {
    return sweepPoint(rows[i].barSize, rows[i].alignment, rows[i].design, options);
  };
  // An exact job fills its row; a sampled one every row of its alignment
  // and design, from one sample. Each job writes only its own rows.
  runConcurrently(
      jobs.size(), options.jobs,
      [&](size_t i) {
        const Job& j = jobs[i];
        if (j.rows.empty()) {
          rows[j.row].result = runProbe(specOf(j.row));
          return;
        }
        const ProbeSample sample = sampleProbe(specOf(j.row));
        for (size_t r : j.rows) rows[r].result = extrapolateProbe(sample, specOf(r));
      },
      [&](size_t i) {
        if (started) started(rows[jobs[i].row]);
      });
  return rows;
}

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
    row.update(probeResultToJson(r.result));
    const DmaMapEstimate d = estimateDmaMap(r.result.touch, r.barSize, 0, r.barSize);
    row["dma_map"] = Json{{"faults", d.faults},
                          {"lookups_per_4k", d.lookupsPer4K},
                          {"lookups_per_leaf", d.lookupsPerLeaf},
                          {"ioptes", Json{{"4k", d.iopte4k}, {"2m", d.iopte2m}, {"1g", d.iopte1g}}},
                          {"modeled_ns_per_4k", d.modeledNsPer4K},
                          {"modeled_ns_per_leaf", d.modeledNsPerLeaf}};
    rs.push_back(row);
  }
  j["rows"] = rs;
  return j;
}

std::string sweepToCsv(const std::vector<SweepRow>& rows) {
  std::string out = "bar_size,alignment,design,profile,address,sampled,sampled_fraction,phase";
  const Json header = phaseToJson(Metrics{});
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
      const Json values = phaseToJson(*m);
      for (const auto& [key, v] : values.items()) {
        out += ',';
        out += v.dump();
      }
      const DmaMapEstimate d = estimateDmaMap(r.result.touch, r.barSize, 0, r.barSize);
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
  for (uint64_t c : cols) out += fmt::format(" {:>22}", formatSize(c));
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
        const DmaMapEstimate e = estimateDmaMap(r.result.touch, r.barSize, 0, r.barSize);
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
        sampled, rows.size(), formatSize(options.sampleAbove));
  return out;
}

namespace {

std::string htmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      default: out += c;
    }
  }
  return out;
}

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
      sampled += fmt::format("<li>{} {} {}: measured {:.3g} of the BAR</li>", formatSize(r.barSize),
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

int runSweepCommand(const SweepCommand& cmd) {
  // Every output is opened before the sweep, so a bad path fails at once;
  // each appears whole when committed (sim/output_file.h).
  auto open = [](const std::string& path, const char* what) {
    return path.empty() ? nullptr : std::make_unique<OutputFile>(path, what);
  };
  const auto csv = open(cmd.csvPath, "CSV");
  const auto json = open(cmd.jsonPath, "JSON");
  const auto report = open(cmd.reportPath, "report");
  const auto start = std::chrono::steady_clock::now();
  size_t done = 0;
  const std::vector<SweepRow> rows = runSweep(cmd.options, [&](const SweepRow& r) {
    fmt::print(stderr, "\r[{}] {} {} {}        ", ++done, formatSize(r.barSize), r.alignment,
               designName(r.design));
    std::fflush(stderr);
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(stderr, "\n");
  fmt::print("{}", sweepSummary(cmd.options, rows));
  fmt::print("{} points in {:.1f} s ({} at once)\n", rows.size(), seconds, cmd.options.jobs);
  if (csv) {
    csv->stream() << sweepToCsv(rows);
    csv->commit();
  }
  if (json) {
    json->stream() << jsonText(sweepToJson(cmd.options, rows), 2) << "\n";
    json->commit();
  }
  if (report) {
    report->stream() << sweepReportHtml(cmd.options, rows);
    report->commit();
  }
  return 0;
}

}  // namespace vfiomm::sim
