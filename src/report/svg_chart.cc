#include "report/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "base/html_escape.h"

namespace vfiomm::report::svg {

namespace {

// Canvas, in SVG user units; the page scales the whole svg to its width.
constexpr double kWidth = 760;
constexpr double kPlotLeft = 84;
constexpr double kPlotRight = kWidth - 180;  // the legend lives right of the plot
constexpr double kPlotTop = 40;
constexpr double kHeight = 380;
constexpr double kBottomMargin = 60;  // tick labels and the axis label
constexpr double kSlantRoom = 40;     // more for slanted group labels
constexpr size_t kMaxLegendChars = 24;
constexpr size_t kMaxCircles = 60;  // beyond this a series is a plain line

// Every coordinate goes through here: a non-finite number would make the
// browser drop the element, so it is a bug, never output.
std::string px(double v) { return fmt::format("{:.1f}", std::isfinite(v) ? v : 0.0); }

// What a hover tooltip shows for a value: integers exactly, others to 4 digits.
std::string exactValue(double v) {
  if (std::fabs(v) < 1e15 && v == std::floor(v)) return fmt::format("{:.0f}", v);
  return fmt::format("{:.4g}", v);
}

// The unit a label divides by: SI (K, M, G, T), binary (KiB ... TiB) or time.
struct Unit {
  double div;
  std::string_view suffix;
};

Unit unitFor(double magnitude, AxisUnit kind) {
  static constexpr std::array<Unit, 5> kSi = {
      {{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "K"}, {1, ""}}};
  static constexpr std::array<Unit, 5> kBinary = {{{1099511627776.0, " TiB"},
                                                   {1073741824.0, " GiB"},
                                                   {1048576.0, " MiB"},
                                                   {1024.0, " KiB"},
                                                   {1, " B"}}};
  static constexpr std::array<Unit, 5> kTime = {
      {{1e9, " s"}, {1e6, " ms"}, {1e3, " us"}, {1, " ns"}, {1e-3, " ps"}}};
  const auto& units = kind == AxisUnit::kBytes         ? kBinary
                      : kind == AxisUnit::kNanoseconds ? kTime
                                                       : kSi;
  for (const Unit& u : units) {
    if (magnitude >= u.div) return u;
  }
  return units.back();
}

// A linear tick: one unit for the whole axis (its largest value) and as
// many decimals as the step needs, so neighbouring labels never read alike.
std::string linearLabel(double v, double step, const Unit& u) {
  if (v == 0) return "0";
  const double decimals = std::max(0.0, std::ceil(-std::log10(step / u.div) - 1e-9));
  return fmt::format("{:.{}f}{}", v / u.div, static_cast<int>(decimals), u.suffix);
}

// A log tick is a power of ten (or of two): its own unit reads exactly.
std::string logLabel(double v, AxisUnit kind) {
  const Unit u = unitFor(v, kind);
  return fmt::format("{:g}{}", v / u.div, u.suffix);
}

// 1, 2 or 5 times a power of ten, the smallest at least `rough`.
double niceStep(double rough) {
  const double mag = std::pow(10.0, std::floor(std::log10(rough)));
  const double norm = rough / mag;
  if (norm <= 1) return mag;
  if (norm <= 2) return 2 * mag;
  if (norm <= 5) return 5 * mag;
  return 10 * mag;
}

std::vector<Tick> linearTicks(double lo, double hi, AxisUnit kind) {
  if (hi == lo) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) / 2;
    lo -= pad;
    hi += pad;
  }
  const double rough = (hi - lo) / 5;
  // Labels use the unit of the largest value; a byte axis steps in 1-2-5
  // multiples of that unit (0.2 GiB, not 200 decimal MB), so labels are exact.
  const Unit unit = unitFor(std::max(std::fabs(lo), std::fabs(hi)), kind);
  const double step =
      kind == AxisUnit::kBytes ? unit.div * niceStep(rough / unit.div) : niceStep(rough);
  const auto first = static_cast<int64_t>(std::floor(lo / step + 1e-9));
  const auto last = static_cast<int64_t>(std::ceil(hi / step - 1e-9));
  std::vector<Tick> ticks;
  for (int64_t i = first; i <= last; ++i) {
    const double v = static_cast<double>(i) * step;
    ticks.push_back({v, linearLabel(v, step, unit)});
  }
  return ticks;
}

std::vector<Tick> logTicks(double lo, double hi, AxisUnit kind) {
  const double base = kind == AxisUnit::kBytes ? 2 : 10;
  const double logBase = std::log(base);
  auto first = static_cast<int64_t>(std::floor(std::log(lo) / logBase + 1e-9));
  auto last = static_cast<int64_t>(std::ceil(std::log(hi) / logBase - 1e-9));
  if (last == first) ++last;
  // At most ~10 labels: skip powers evenly when the range spans more.
  const int64_t maxTicks = 10;
  const int64_t stride = (last - first + maxTicks - 1) / maxTicks;
  last = first + (last - first + stride - 1) / stride * stride;
  std::vector<Tick> ticks;
  for (int64_t e = first; e <= last; e += stride) {
    const double v = std::pow(base, static_cast<double>(e));
    ticks.push_back({v, logLabel(v, kind)});
  }
  return ticks;
}

// Maps a value of the axis domain to a pixel.
class Axis {
 public:
  // `values` are the drawable values; `includeZero` pins a linear axis to 0.
  Axis(std::vector<double> values, bool log, AxisUnit kind, bool includeZero, double p0, double p1)
      : log_(log), p0_(p0), p1_(p1) {
    if (values.empty()) values = log ? std::vector<double>{1, 10} : std::vector<double>{0, 1};
    if (includeZero && !log) values.push_back(0);
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    ticks_ = axisTicks(*lo, *hi, log, kind);
    lo_ = ticks_.front().value;
    hi_ = ticks_.back().value;
  }

  double map(double v) const {
    const double t = log_ ? (std::log10(v) - std::log10(lo_)) / (std::log10(hi_) - std::log10(lo_))
                          : (v - lo_) / (hi_ - lo_);
    return p0_ + t * (p1_ - p0_);
  }
  bool contains(double v) const {
    return std::isfinite(v) && v >= lo_ && v <= hi_ && (!log_ || v > 0);
  }
  // The pixel where bars start: 0 on a linear axis, the bottom on a log one.
  double base() const { return log_ ? p0_ : map(std::clamp(0.0, lo_, hi_)); }
  const std::vector<Tick>& ticks() const { return ticks_; }

 private:
  bool log_;
  double p0_, p1_;
  double lo_ = 0, hi_ = 1;
  std::vector<Tick> ticks_;
};

bool drawable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

std::string shorten(const std::string& name) {
  if (name.size() <= kMaxLegendChars) return name;
  return name.substr(0, kMaxLegendChars - 1) + "\u2026";
}

class SvgWriter {
 public:
  explicit SvgWriter(double extraBottom = 0) : height_(kHeight + extraBottom) {}

  double plotBottom() const { return height_ - kBottomMargin - (height_ - kHeight); }
  std::string& body() { return body_; }

  void title(const std::string& text) {
    body_ += fmt::format(
        R"svg(<text x="{}" y="24" class="chart-title" font-size="15" font-weight="bold">{}</text>)svg",
        px(kPlotLeft), htmlEscape(text));
  }

  void frame() {
    body_ += fmt::format(
        R"svg(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#444"/>)svg",
        px(kPlotLeft), px(kPlotTop), px(kPlotRight - kPlotLeft), px(plotBottom() - kPlotTop));
  }

  void yAxis(const Axis& y, const std::string& label) {
    for (const Tick& t : y.ticks()) {
      const std::string py = px(y.map(t.value));
      body_ += fmt::format(R"svg(<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>)svg",
                           px(kPlotLeft), px(kPlotRight), py, py);
      body_ += fmt::format(
          R"svg(<text x="{}" y="{}" font-size="11" text-anchor="end" dominant-baseline="middle">{}</text>)svg",
          px(kPlotLeft - 6), py, htmlEscape(t.label));
    }
    const double midY = (kPlotTop + plotBottom()) / 2;
    body_ += fmt::format(
        R"svg(<text x="16" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>)svg",
        px(midY), px(midY), htmlEscape(label));
  }

  void xAxis(const Axis& x, const std::string& label) {
    for (const Tick& t : x.ticks()) {
      const std::string pxx = px(x.map(t.value));
      body_ += fmt::format(R"svg(<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>)svg", pxx,
                           pxx, px(kPlotTop), px(plotBottom()));
      body_ +=
          fmt::format(R"svg(<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>)svg",
                      pxx, px(plotBottom() + 16), htmlEscape(t.label));
    }
    body_ +=
        fmt::format(R"svg(<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>)svg",
                    px((kPlotLeft + kPlotRight) / 2), px(plotBottom() + 40), htmlEscape(label));
  }

  void legend(const std::vector<std::string>& names, bool lines) {
    for (size_t i = 0; i < names.size(); ++i) {
      const double y = kPlotTop + 8 + static_cast<double>(i) * 18;
      const std::string& colour = seriesColour(i);
      if (lines) {
        body_ += fmt::format(
            R"svg(<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="2.5"/>)svg",
            px(kPlotRight + 14), px(kPlotRight + 30), px(y), px(y), colour);
      } else {
        body_ += fmt::format(R"svg(<rect x="{}" y="{}" width="12" height="12" fill="{}"/>)svg",
                             px(kPlotRight + 16), px(y - 6), colour);
      }
      body_ += fmt::format(
          R"svg(<text x="{}" y="{}" font-size="12" dominant-baseline="middle">{}<title>{}</title></text>)svg",
          px(kPlotRight + 36), px(y), htmlEscape(shorten(names[i])), htmlEscape(names[i]));
    }
  }

  void noData() {
    body_ += fmt::format(
        R"svg(<text x="{}" y="{}" font-size="14" fill="#888" text-anchor="middle">no data</text>)svg",
        px((kPlotLeft + kPlotRight) / 2), px((kPlotTop + plotBottom()) / 2));
  }

  std::string finish(const std::string& chartTitle, size_t marks) const {
    return fmt::format(
        R"svg(<svg class="chart" data-points="{}" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}" font-family="sans-serif"><title>{}</title>{}</svg>)svg",
        marks, px(kWidth), px(height_), px(kWidth), px(height_), htmlEscape(chartTitle),
        htmlEscape(chartTitle), body_);
  }

 private:
  double height_;
  std::string body_;
};

}  // namespace

const std::string& seriesColour(size_t index) {
  // Okabe-Ito, without its yellow (unreadable on white), then greys.
  static const std::array<std::string, 8> kPalette = {"#0072b2", "#d55e00", "#009e73", "#e69f00",
                                                      "#cc79a7", "#56b4e9", "#000000", "#999999"};
  return kPalette[index % kPalette.size()];
}

AxisUnit axisUnitOf(const std::string& label) {
  std::string lower = label;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  if (lower.find("bytes") != std::string::npos) return AxisUnit::kBytes;
  if (lower.find("(ns)") != std::string::npos) return AxisUnit::kNanoseconds;
  return AxisUnit::kPlain;
}

std::vector<Tick> axisTicks(double lo, double hi, bool log, AxisUnit unit) {
  if (hi < lo) std::swap(lo, hi);
  return log ? logTicks(lo, hi, unit) : linearTicks(lo, hi, unit);
}

std::string lineChart(const LineChartSpec& spec) {
  // The x axis spans every point it can place, even one whose y the y axis
  // cannot show (a zero on a log scale): a timeline keeps its start.
  std::vector<double> xs, ys;
  size_t marks = 0;
  for (const Series& s : spec.series) {
    for (const auto& [x, y] : s.points) {
      if (!drawable(x, spec.logX)) continue;
      xs.push_back(x);
      if (!drawable(y, spec.logY)) continue;
      ys.push_back(y);
      ++marks;
    }
  }
  SvgWriter w;
  const Axis xAxis(xs, spec.logX, axisUnitOf(spec.xLabel), false, kPlotLeft, kPlotRight);
  const Axis yAxis(ys, spec.logY, axisUnitOf(spec.yLabel), true, w.plotBottom(), kPlotTop);
  w.title(spec.title);
  w.yAxis(yAxis, spec.yLabel);
  w.xAxis(xAxis, spec.xLabel);
  if (marks != 0) {
    for (const auto& [x, label] : spec.xMarks) {
      if (!xAxis.contains(x)) continue;
      const std::string mx = px(xAxis.map(x));
      w.body() += fmt::format(
          R"svg(<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#888" stroke-dasharray="4 3"/>)svg",
          mx, mx, px(kPlotTop), px(w.plotBottom()));
      w.body() += fmt::format(
          R"svg(<text x="{}" y="{}" font-size="10" fill="#555" text-anchor="end" transform="rotate(-90 {} {})">{}</text>)svg",
          px(xAxis.map(x) + 10), px(kPlotTop + 4), px(xAxis.map(x) + 10), px(kPlotTop + 4),
          htmlEscape(label));
    }
  }
  std::vector<std::string> names;
  for (size_t i = 0; i < spec.series.size(); ++i) {
    const Series& s = spec.series[i];
    names.push_back(s.name);
    std::string points;
    size_t n = 0;
    for (const auto& [x, y] : s.points) {
      if (!drawable(x, spec.logX) || !drawable(y, spec.logY)) continue;
      points += fmt::format("{}{},{}", n == 0 ? "" : " ", px(xAxis.map(x)), px(yAxis.map(y)));
      ++n;
    }
    if (n == 0) continue;
    const std::string& colour = seriesColour(i);
    w.body() += fmt::format(
        R"svg(<polyline class="series" fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>)svg",
        colour, points, htmlEscape(s.name));
    if (n > kMaxCircles) continue;
    for (const auto& [x, y] : s.points) {
      if (!drawable(x, spec.logX) || !drawable(y, spec.logY)) continue;
      w.body() += fmt::format(
          R"svg(<circle cx="{}" cy="{}" r="3" fill="{}"><title>{}: ({}, {})</title></circle>)svg",
          px(xAxis.map(x)), px(yAxis.map(y)), colour, htmlEscape(s.name), exactValue(x),
          exactValue(y));
    }
  }
  w.frame();
  w.legend(names, true);
  if (marks == 0) w.noData();
  return w.finish(spec.title, marks);
}

namespace {

double valueAt(const BarGroup& g, size_t series) {
  return series < g.values.size() ? g.values[series] : std::nan("");
}

// Stacked segments show only what adds up: positive finite values.
bool stackable(double v) { return std::isfinite(v) && v > 0; }

std::vector<double> barDomain(const BarChartSpec& spec) {
  std::vector<double> values;
  for (const BarGroup& g : spec.groups) {
    double sum = 0;
    for (size_t s = 0; s < spec.seriesNames.size(); ++s) {
      const double v = valueAt(g, s);
      if (spec.stacked) {
        if (!stackable(v)) continue;
        sum += v;
        values.push_back(sum);
        if (spec.logY) values.push_back(v);  // the smallest segment sets the log floor
      } else if (drawable(v, spec.logY)) {
        values.push_back(v);
      }
    }
  }
  // A log axis starts below the smallest bar, or that bar has no height.
  if (spec.logY && !values.empty())
    values.push_back(*std::min_element(values.begin(), values.end()) / 2);
  return values;
}

// Group labels slant when they would not fit side by side.
bool slantLabels(const BarChartSpec& spec, double band) {
  size_t longest = 0;
  for (const BarGroup& g : spec.groups) longest = std::max(longest, g.label.size());
  return static_cast<double>(longest) * 6.5 > band;
}

void groupLabels(SvgWriter& w, const BarChartSpec& spec, double band, bool slant) {
  for (size_t gi = 0; gi < spec.groups.size(); ++gi) {
    const double cx = kPlotLeft + band * (static_cast<double>(gi) + 0.5);
    const double y = w.plotBottom() + 16;
    if (slant) {
      w.body() += fmt::format(
          R"svg(<text x="{}" y="{}" font-size="11" text-anchor="end" transform="rotate(-30 {} {})">{}</text>)svg",
          px(cx), px(y), px(cx), px(y), htmlEscape(spec.groups[gi].label));
    } else {
      w.body() +=
          fmt::format(R"svg(<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>)svg",
                      px(cx), px(y), htmlEscape(spec.groups[gi].label));
    }
  }
}

}  // namespace

std::string barChart(const BarChartSpec& spec) {
  const double band =
      (kPlotRight - kPlotLeft) / static_cast<double>(std::max<size_t>(spec.groups.size(), 1));
  const bool slant = slantLabels(spec, band);
  SvgWriter w(slant ? kSlantRoom : 0);
  const std::vector<double> domain = barDomain(spec);
  const Axis yAxis(domain, spec.logY, axisUnitOf(spec.yLabel), true, w.plotBottom(), kPlotTop);
  w.title(spec.title);
  w.yAxis(yAxis, spec.yLabel);
  const size_t nSeries = std::max<size_t>(spec.seriesNames.size(), 1);
  const double barWidth = spec.stacked ? band * 0.6 : band * 0.8 / static_cast<double>(nSeries);
  size_t marks = 0;
  for (size_t gi = 0; gi < spec.groups.size(); ++gi) {
    const BarGroup& g = spec.groups[gi];
    const double bandLeft = kPlotLeft + band * static_cast<double>(gi);
    double sum = 0;
    for (size_t s = 0; s < spec.seriesNames.size(); ++s) {
      const double v = valueAt(g, s);
      double top = 0, bottom = 0, left = 0;
      if (spec.stacked) {
        if (!stackable(v)) continue;
        bottom = sum == 0 ? yAxis.base() : yAxis.map(sum);
        sum += v;
        top = yAxis.map(sum);
        left = bandLeft + band * 0.2;
      } else {
        if (!drawable(v, spec.logY) || v == 0) continue;
        const double tip = yAxis.map(v);
        top = std::min(tip, yAxis.base());
        bottom = std::max(tip, yAxis.base());
        left = bandLeft + band * 0.1 + barWidth * static_cast<double>(s);
      }
      w.body() += fmt::format(
          R"svg(<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} / {}: {}</title></rect>)svg",
          px(left), px(top), px(barWidth), px(std::max(bottom - top, 0.5)), seriesColour(s),
          htmlEscape(g.label), htmlEscape(spec.seriesNames[s]), exactValue(v));
      ++marks;
    }
  }
  groupLabels(w, spec, band, slant);
  w.frame();
  w.legend(spec.seriesNames, false);
  if (marks == 0) w.noData();
  return w.finish(spec.title, marks);
}

}  // namespace vfiomm::report::svg
