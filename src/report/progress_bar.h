// ProgressBar: one line on stderr that shows how far a long run has got —
// only when stderr is a terminal (a log file or a pipe gets nothing) and only
// once the run has lasted a second (short runs stay quiet).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace vfiomm::report {

class ProgressBar {
 public:
  // `enabled` false: draws nothing whatever happens (tests, --json to stdout).
  ProgressBar(std::FILE* out, bool enabled);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Whether `out` is a terminal: the condition for drawing at all.
  static bool isTerminal(std::FILE* out);

  // `fraction` in [0, 1] of the whole run; `what` says what runs now. Draws
  // at most every kRedraw, and never in the first kQuiet.
  void update(double fraction, const std::string& what);
  // Erases the line, so the table printed next starts clean.
  void finish();

  // The line for `fraction` and `what` in `width` columns (tests).
  static std::string render(double fraction, const std::string& what, double elapsedSeconds,
                            unsigned width);

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kQuiet{1000};
  static constexpr std::chrono::milliseconds kRedraw{100};

  std::FILE* out_;
  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_ = Clock::now();
  Clock::time_point lastDraw_{};
};

}  // namespace vfiomm::report
