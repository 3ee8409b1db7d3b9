// Issue 17 finding 5: a SIGINT to a parent running children (as `vfiomm
// compare` does) kills and reaps them, removes the trace hand-over files
// and the output files' temporary names, leaves the previous outputs, and
// exits with 128 + SIGINT.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "sim/child_pool.h"
#include "sim/interrupt.h"
#include "sim/output_file.h"
#include "sim/trace_files.h"

namespace vfiomm::sim {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeAtomically(const std::string& p, const std::string& text) {
  std::ofstream(p + ".part") << text;
  fs::rename(p + ".part", p);
}

TEST(ChildPoolInterrupt, Finding5_SigintKillsChildrenAndRemovesWhatTheyLeft) {
  const fs::path dir = fs::temp_directory_path() / ("vfiomm-interrupt-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string out = (dir / "out.json").string();
  const std::string parentFile = (dir / "parent").string();
  const std::string sleeperFile = (dir / "sleeper").string();
  std::ofstream(out) << "previous\n";

  // The parent (the death test's child) runs two children: the first
  // leaves its trace hand-over file and ends, the second never ends. Once
  // both happened, the parent gets a SIGINT.
  EXPECT_EXIT(
      {
        installInterruptHandlers();
        writeAtomically(parentFile, std::to_string(::getpid()));
        OutputFile json(out, "JSON");
        json.stream() << "partial";
        ChildTraceHandover handover(::getpid(), 2);
        runInChildren(
            2, 2,
            [&](size_t i) -> std::string {
              if (i == 0) {
                saveChildTrace(trace::TraceLog{}, ::getppid(), 0);
                return "done";
              }
              writeAtomically(sleeperFile, std::to_string(::getpid()));
              for (;;) ::pause();
            },
            {},
            [&] {
              if (fs::exists(childTracePath(::getpid(), 0)) && fs::exists(sleeperFile)) std::raise(SIGINT);
            });
        std::exit(0);
      },
      ::testing::ExitedWithCode(128 + SIGINT), "interrupted by SIGINT");

  const std::string parent = slurp(parentFile);
  const std::string sleeper = slurp(sleeperFile);
  ASSERT_FALSE(parent.empty());
  ASSERT_FALSE(sleeper.empty());
  // Killed and reaped: no such process any more (not even a zombie).
  EXPECT_FALSE(fs::exists("/proc/" + sleeper)) << "child " << sleeper << " survived";
  EXPECT_FALSE(fs::exists(childTracePath(std::stoi(parent), 0)));
  EXPECT_FALSE(fs::exists(childTracePath(std::stoi(parent), 1)));
  EXPECT_EQ(slurp(out), "previous\n");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"out.json", "parent", "sleeper"}));
  fs::remove_all(dir);
}

// Without a signal, children still running when runInChildren leaves early
// (another child failed) are killed and reaped too.
TEST(ChildPoolInterrupt, Finding5_FailedChildTakesTheOthersDown) {
  const fs::path dir = fs::temp_directory_path() / ("vfiomm-pool-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string sleeperFile = (dir / "sleeper").string();
  EXPECT_THROW(runInChildren(
                   2, 2,
                   [&](size_t i) -> std::string {
                     if (i == 0) {
                       while (!fs::exists(sleeperFile)) ::usleep(1000);
                       throw std::runtime_error("child 0 fails");
                     }
                     writeAtomically(sleeperFile, std::to_string(::getpid()));
                     for (;;) ::pause();
                   }),
               std::runtime_error);
  const std::string sleeper = slurp(sleeperFile);
  ASSERT_FALSE(sleeper.empty());
  EXPECT_FALSE(fs::exists("/proc/" + sleeper)) << "child " << sleeper << " survived";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vfiomm::sim
