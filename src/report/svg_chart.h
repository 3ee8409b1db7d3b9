// SVG charts drawn by vfiomm itself, for the self-contained HTML reports of
// `run`, `compare` and `sweep` (issue 7): no script, no font, no network.
//
// Each function returns one inline `<svg>` element meant to sit inside an
// HTML page (no xmlns: the HTML parser supplies it, and the page stays free
// of URLs). Its root carries `class="chart"` and `data-points="N"`, N being
// the number of marks drawn (line vertices, bar segments), so a test can tell
// an empty chart from a drawn one without parsing geometry.
//
// Values that a log axis cannot show (zero, negative) and non-finite values
// are left out rather than clamped, so the chart never invents a number; a
// chart left with nothing to draw says "no data".
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace vfiomm::report::svg {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in this order
};

struct LineChartSpec {
  // Labels carry units, e.g. "BAR size (bytes)"; see axisUnitOf for the
  // units that change how ticks read.
  std::string title, xLabel, yLabel;
  bool logX = false, logY = false;
  std::vector<Series> series;
  std::vector<std::pair<double, std::string>> xMarks;  // vertical markers (e.g. phase starts)
};
std::string lineChart(const LineChartSpec& spec);

struct BarGroup {
  std::string label;
  std::vector<double> values;  // one per series; missing trailing values count as absent
};

struct BarChartSpec {
  std::string title, yLabel;
  std::vector<std::string> seriesNames;
  std::vector<BarGroup> groups;
  // stacked: one bar per group made of one segment per series (negative
  // values are not drawn); otherwise one bar per series side by side.
  bool logY = false, stacked = false;
};
std::string barChart(const BarChartSpec& spec);

// The fixed palette, cycled by series index: colour-blind-safe hues first.
const std::string& seriesColour(size_t index);

// How an axis's tick labels read.
enum class AxisUnit {
  kPlain,        // 1.5K, 2M, 1G
  kBytes,        // 4 KiB, 2 MiB, 1 GiB; powers of two on a log scale
  kNanoseconds,  // 500 ns, 1.5 us, 20 ms, 3 s
};
// An axis label containing "bytes" is in bytes, one containing "(ns)" in
// nanoseconds; anything else is plain.
AxisUnit axisUnitOf(const std::string& label);

// One tick of an axis: where it is and what it reads.
struct Tick {
  double value;
  std::string label;
};
// The ticks a chart draws for a value range, exposed for tests: 1-2-5 steps
// on a linear axis, decades (powers of two for bytes) on a log axis.
// `lo` and `hi` must be finite, and positive when `log`.
std::vector<Tick> axisTicks(double lo, double hi, bool log, AxisUnit unit);

}  // namespace vfiomm::report::svg
