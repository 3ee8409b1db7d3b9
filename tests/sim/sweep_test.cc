// `vfiomm sweep`: counts of single points against the spec, the sampling
// (extrapolation from two cut-down runs) against full runs, the JSON of a
// small sweep against a checked-in golden file, and bad input.
//
// Regenerate the golden file after an intended change of the output:
//   VFIOMM_UPDATE_GOLDEN=1 build/release/tests/vfiomm_tests --gtest_filter='Sweep*Golden*'
// and review the diff of tests/sim/golden/sweep_small.json.
#include "sim/sweep.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "base/byte_units.h"
#include "report/sweep_report.h"
#include "sim/bar_probe.h"
#include "sim/scenario.h"
#include "source_dir.h"

namespace vfiomm::sim {
namespace {

using report::sweepReportHtml;
using report::sweepToCsv;
using report::sweepToJson;

using Json = nlohmann::ordered_json;

// Wall times differ from run to run; everything else is deterministic.
void dropWallTimes(Json& j) {
  if (j.is_object()) {
    j.erase("wall_ns");
    for (auto& [k, v] : j.items()) dropWallTimes(v);
  } else if (j.is_array()) {
    for (auto& v : j) dropWallTimes(v);
  }
}

std::filesystem::path golden(const std::string& name) {
  return std::filesystem::path(test::sourceDir()) / "tests/sim/golden" / name;
}

void expectGolden(Json actual, const std::string& name) {
  dropWallTimes(actual);
  const std::filesystem::path path = golden(name);
  if (std::getenv("VFIOMM_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << actual.dump(2) << "\n";
    GTEST_SKIP() << "rewrote " << path;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing golden file " << path;
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(actual.dump(2) + "\n", text.str()) << "differs from " << path;
}

ProbeResult point(uint64_t size, const std::string& align, DesignKind d) {
  return runProbe(sweepPoint(size, align, d, defaultSweepOptions()));
}

// FAULT-06 [G2s]: one PTE per fault, so a full touch of 4 MiB takes
// 4M / 4K = 1024 faults; the toggle zaps those 1024 entries (ZAP: every
// entry of the BAR's mappings goes) and the retouch faults them all again.
TEST(SweepPoint, AddressSpaceFaultsEveryPage) {
  const ProbeResult r = point(4 * kMiB, "natural", DesignKind::kAddressSpace);
  EXPECT_FALSE(r.sampled);
  EXPECT_EQ(r.touch.faults, 1024U);
  EXPECT_EQ(r.touch.pte, 1024U);
  EXPECT_EQ(r.touch.pmd + r.touch.pud, 0U);
  EXPECT_EQ(r.toggle.zappedEntries, 1024U);
  EXPECT_EQ(r.retouch.faults, 1024U);
  EXPECT_EQ(r.touch.accesses, 1024U);
}

// HUGE-02 at 2 MiB scale: natural alignment of a 4 MiB BAR is 4 MiB, so
// VA ≡ offset (mod 2 MiB) and each 2 MiB block is one PMD leaf: 2 faults.
// At "4K" (4 KiB- but not 2 MiB-aligned) HUGE-03 applies: all 4 KiB.
TEST(SweepPoint, HugeFaultNeedsTheAlignment) {
  const ProbeResult aligned = point(4 * kMiB, "natural", DesignKind::kHugeFault);
  EXPECT_EQ(aligned.touch.faults, 2U);
  EXPECT_EQ(aligned.touch.pmd, 2U);
  EXPECT_EQ(aligned.touch.pte, 0U);
  const ProbeResult misaligned = point(4 * kMiB, "4K", DesignKind::kHugeFault);
  EXPECT_EQ(misaligned.touch.faults, 1024U);
  EXPECT_EQ(misaligned.touch.pte, 1024U);
  EXPECT_EQ(misaligned.touch.pmd, 0U);
  EXPECT_EQ(misaligned.address % (2 * kMiB), 4096U);
}

// FAULT-03 [G1]: the first fault fills the whole VMA with PTEs.
TEST(SweepPoint, VmaListFillsOnTheFirstFault) {
  const ProbeResult r = point(4 * kMiB, "2M", DesignKind::kVmaList);
  EXPECT_EQ(r.touch.faults, 1U);
  EXPECT_EQ(r.touch.pte, 1024U);
}

// The sampled result of a 4 GiB mapping (measured with 1 and 2 whole
// 1 GiB blocks, extrapolated to 3) equals the full run in every count:
// the blocks between head and tail all cost the same. One per-fault
// design (PMD leaves at 2 MiB alignment) and one whole-VMA fill.
TEST(SweepSampling, ExtrapolationIsExactForWholeBlocks) {
  for (DesignKind d : {DesignKind::kHugeFault, DesignKind::kFillVma}) {
    SweepOptions full = defaultSweepOptions();
    full.sampleAbove = 8ULL << 30;
    SweepOptions sampled = full;
    sampled.sampleAbove = 1ULL << 30;
    const ProbeResult e = runProbe(sweepPoint(4ULL << 30, "2M", d, full));
    const ProbeResult s = runProbe(sweepPoint(4ULL << 30, "2M", d, sampled));
    ASSERT_FALSE(e.sampled);
    ASSERT_TRUE(s.sampled);
    EXPECT_LT(s.sampledFraction, 1.0);
    Json ej = probeResultToJson(e);
    Json sj = probeResultToJson(s);
    dropWallTimes(ej);
    dropWallTimes(sj);
    ej.erase("sampled");
    sj.erase("sampled");
    ej.erase("sampled_fraction");
    sj.erase("sampled_fraction");
    EXPECT_EQ(ej.dump(2), sj.dump(2)) << designName(d);
  }
  // 4 GiB at 2 MiB alignment: 3 whole 1 GiB blocks between a head of
  // 1 GiB - 2 MiB and a tail of 2 MiB; all PMD leaves, 2048 of them.
  const ProbeResult e =
      runProbe(sweepPoint(4ULL << 30, "2M", DesignKind::kHugeFault, defaultSweepOptions()));
  EXPECT_EQ(e.touch.pmd, 2048U);
}

TEST(SweepGolden, SmallSweepJson) {
  SweepOptions o = defaultSweepOptions();
  o.sizes = {64ULL << 10, 4 * kMiB};
  std::vector<SweepRow> rows;
  for (uint64_t s : o.sizes)
    for (const std::string& a : o.alignments)
      for (DesignKind d : o.designs)
        rows.push_back(SweepRow{s, a, d, runProbe(sweepPoint(s, a, d, o))});
  expectGolden(sweepToJson(o, rows), "sweep_small.json");
  // The CSV has a header and three phases per point.
  const std::string csv = sweepToCsv(rows);
  EXPECT_EQ(static_cast<size_t>(std::count(csv.begin(), csv.end(), '\n')), 1 + 3 * rows.size());
  EXPECT_EQ(
      csv.rfind("bar_size,alignment,design,profile,address,sampled,sampled_fraction,phase,faults,",
                0),
      0U);
}

// Two log–log charts (faults, modelled time) per alignment, each with a
// line per design through every swept size.
TEST(SweepReport, ChartsPerAlignment) {
  SweepOptions o = defaultSweepOptions();
  o.sizes = {64ULL << 10, 4 * kMiB};
  o.alignments = {"4K", "natural"};
  o.designs = {DesignKind::kHugeFault, DesignKind::kAddressSpace};
  std::vector<SweepRow> rows;
  for (uint64_t s : o.sizes)
    for (const std::string& a : o.alignments)
      for (DesignKind d : o.designs)
        rows.push_back(SweepRow{s, a, d, runProbe(sweepPoint(s, a, d, o))});
  const std::string html = sweepReportHtml(o, rows);
  size_t charts = 0;
  for (size_t at = html.find("data-points=\"4\""); at != std::string::npos;
       at = html.find("data-points=\"4\"", at + 1))
    ++charts;
  EXPECT_EQ(charts, 4U);  // 2 alignments × (faults, time), 2 designs × 2 sizes each
  EXPECT_NE(html.find("faults of one full touch, 4K alignment"), std::string::npos);
  EXPECT_NE(html.find("No point was sampled"), std::string::npos);
}

TEST(SweepOptionsParse, SizeRangesAndLists) {
  EXPECT_EQ(parseSizeList("64K-1M"), (std::vector<uint64_t>{64ULL << 10, 128ULL << 10, 256ULL << 10,
                                                            512ULL << 10, 1ULL << 20}));
  EXPECT_EQ(parseSizeList("1G,64K,0x200000"),
            (std::vector<uint64_t>{64ULL << 10, 2ULL << 20, 1ULL << 30}));
  EXPECT_EQ(parseAlignmentList({"4k", "NATURAL"}), (std::vector<std::string>{"4K", "natural"}));
  EXPECT_EQ(parseAlignmentList({}), sweepAlignments());
}

TEST(SweepOptionsParse, BadInputIsNamed) {
  auto message = [](auto f) {
    try {
      f();
    } catch (const ScenarioError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] { parseSizeList("3K"); }).find("bad size '3K'"), std::string::npos);
  EXPECT_NE(message([] { parseSizeList("96K"); }).find("power of two"), std::string::npos);
  EXPECT_NE(message([] { parseSizeList("1G-64K"); }).find("1G is above 64K"), std::string::npos);
  EXPECT_NE(message([] { parseSizeList("lots"); }).find("bad size 'lots'"), std::string::npos);
  EXPECT_NE(message([] { parseAlignmentList({"3M"}); }).find("unknown alignment '3M'"),
            std::string::npos);
}

}  // namespace
}  // namespace vfiomm::sim
