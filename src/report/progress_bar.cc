#include "report/progress_bar.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace vfiomm::report {

namespace {

constexpr unsigned kBarColumns = 30;
constexpr unsigned kLineColumns = 79;  // leaves the last column of an 80-column terminal free

}  // namespace

ProgressBar::ProgressBar(std::FILE* out, bool enabled)
    : out_(out), enabled_(enabled && isTerminal(out)) {}

ProgressBar::~ProgressBar() { finish(); }

bool ProgressBar::isTerminal(std::FILE* out) {
  return out != nullptr && ::isatty(::fileno(out)) == 1;
}

std::string ProgressBar::render(double fraction, const std::string& what, double elapsedSeconds,
                                unsigned width) {
  const double f = std::isfinite(fraction) ? std::clamp(fraction, 0.0, 1.0) : 0.0;
  const auto filled = static_cast<unsigned>(std::lround(f * kBarColumns));
  std::string line =
      fmt::format("[{}{}] {:3.0f}% {:5.1f}s {}", std::string(filled, '#'),
                  std::string(kBarColumns - filled, '.'), f * 100, elapsedSeconds, what);
  if (line.size() > width) line.resize(width);
  return line;
}

void ProgressBar::update(double fraction, const std::string& what) {
  if (!enabled_) return;
  const Clock::time_point now = Clock::now();
  if (now - start_ < kQuiet || now - lastDraw_ < kRedraw) return;
  lastDraw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  // "\r" and erase-to-end-of-line redraw in place.
  fmt::print(out_, "\r{}\x1b[K", render(fraction, what, elapsed, kLineColumns));
  std::fflush(out_);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (!drawn_) return;
  fmt::print(out_, "\r\x1b[K");
  std::fflush(out_);
  drawn_ = false;
}

}  // namespace vfiomm::report
