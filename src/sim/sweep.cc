#include "sim/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <numeric>
#include <sstream>

#include "base/byte_format.h"
#include "base/byte_units.h"
#include "base/page_geometry.h"
#include "sim/scenario.h"
#include "sim/work_pool.h"

namespace vfiomm::sim {

namespace {

using Json = nlohmann::ordered_json;

// Fixed placements start from here: 2 TiB-aligned and far below the
// mmap base, so base + alignment is aligned to exactly that alignment.
constexpr uint64_t kFixedBase = 0x7e00'0000'0000ULL;

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
      throw ScenarioError(fmt::format("bad size range '{}': {} is above {}", part, formatBytes(lo),
                                      formatBytes(hi)));
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

}  // namespace vfiomm::sim
