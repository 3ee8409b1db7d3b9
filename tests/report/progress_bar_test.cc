// The progress bar: its line, and that it stays silent off a terminal.
#include "report/progress_bar.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

namespace vfiomm::sim {
namespace {

using report::ProgressBar;

TEST(ProgressBar, RendersFractionElapsedAndWhat) {
  EXPECT_EQ(ProgressBar::render(0.5, "address-space: touch", 12.34, 79),
            "[###############...............]  50%  12.3s address-space: touch");
  EXPECT_EQ(ProgressBar::render(0.0, "x", 0, 79), "[..............................]   0%   0.0s x");
  EXPECT_EQ(ProgressBar::render(1.0, "x", 1, 79), "[##############################] 100%   1.0s x");
}

TEST(ProgressBar, ClampsNonsenseAndFitsTheWidth) {
  EXPECT_EQ(ProgressBar::render(7.0, "x", 0, 79).substr(0, 37),
            "[##############################] 100%");
  EXPECT_EQ(ProgressBar::render(-1.0, "x", 0, 79).substr(0, 37),
            "[..............................]   0%");
  EXPECT_EQ(ProgressBar::render(std::nan(""), "x", 0, 79).substr(0, 37),
            "[..............................]   0%");
  EXPECT_EQ(ProgressBar::render(0.5, std::string(200, 'p'), 0, 79).size(), 79U);
}

// A file is not a terminal: nothing is ever drawn, however long the run.
TEST(ProgressBar, DrawsNothingOffATerminal) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(ProgressBar::isTerminal(f));
  {
    ProgressBar bar(f, true);
    for (int i = 0; i <= 100; ++i) bar.update(i / 100.0, "phase");
    bar.finish();
  }
  EXPECT_EQ(std::ftell(f), 0L);
  std::fclose(f);
}

}  // namespace
}  // namespace vfiomm::sim
