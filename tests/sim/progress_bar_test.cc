// The progress bar: its line, and that it stays silent off a terminal.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include <sys/wait.h>
#include <unistd.h>
#include <string>

#include "sim/progress_bar.h"
#include "sim/shared_progress.h"

namespace vfiomm::sim {
namespace {

TEST(ProgressBar, RendersFractionElapsedAndWhat) {
  EXPECT_EQ(ProgressBar::render(0.5, "address-space: touch", 12.34, 79),
            "[###############...............]  50%  12.3s address-space: touch");
  EXPECT_EQ(ProgressBar::render(0.0, "x", 0, 79), "[..............................]   0%   0.0s x");
  EXPECT_EQ(ProgressBar::render(1.0, "x", 1, 79), "[##############################] 100%   1.0s x");
}

TEST(ProgressBar, ClampsNonsenseAndFitsTheWidth) {
  EXPECT_EQ(ProgressBar::render(7.0, "x", 0, 79).substr(0, 37), "[##############################] 100%");
  EXPECT_EQ(ProgressBar::render(-1.0, "x", 0, 79).substr(0, 37), "[..............................]   0%");
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

// What a forked child writes, the parent reads: the bar follows designs
// that run in child processes.
TEST(SharedProgress, ChildWritesParentReads) {
  SharedProgress progress(2);
  EXPECT_EQ(progress.mean(), 0.0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    progress.set(1, 0.5);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(progress.get(0), 0.0);
  EXPECT_EQ(progress.get(1), 0.5);
  EXPECT_EQ(progress.mean(), 0.25);
  progress.set(0, 3.0);  // clamped
  EXPECT_EQ(progress.get(0), 1.0);
}

}  // namespace
}  // namespace vfiomm::sim
