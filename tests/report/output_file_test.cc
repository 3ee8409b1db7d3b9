// Issue 17 finding 4: output files are complete or absent. A file appears
// under its name only when committed; anything short of that leaves the
// previous file; a path that cannot be written fails when opened (before a
// run), and a full device fails when committed, never silently.
#include "report/output_file.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace vfiomm::sim {
namespace {

using report::OutputError;
using report::OutputFile;

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class OutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("vfiomm-output-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string read(const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static void write(const std::string& p, const std::string& text) { std::ofstream(p) << text; }
  // Every name in the directory, temporary files included.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
};

TEST_F(OutputFileTest, Finding4_CommitReplacesThePreviousFileWhole) {
  write(path("out.json"), "previous\n");
  ::chmod(path("out.json").c_str(), 0640);
  {
    OutputFile out(path("out.json"), "JSON");
    out.stream() << "new\n";
    // Until committed, the previous file is what the name shows.
    EXPECT_EQ(read(path("out.json")), "previous\n");
    EXPECT_EQ(names().size(), 2U);
    out.commit();
  }
  EXPECT_EQ(read(path("out.json")), "new\n");
  EXPECT_EQ(names(), std::vector<std::string>{"out.json"});
  struct stat st {};
  ASSERT_EQ(::stat(path("out.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640U);
}

TEST_F(OutputFileTest, Finding4_UncommittedFileLeavesThePreviousOne) {
  write(path("out.json"), "previous\n");
  {
    OutputFile out(path("out.json"), "JSON");
    out.stream() << std::string(1 << 20, 'x');  // more than the buffer: part of it reached the disk
  }
  EXPECT_EQ(read(path("out.json")), "previous\n");
  EXPECT_EQ(names(), std::vector<std::string>{"out.json"});
  { OutputFile fresh(path("new.json"), "JSON"); }
  EXPECT_EQ(names(), std::vector<std::string>{"out.json"});
}

TEST_F(OutputFileTest, Finding4_UnwritablePathFailsWhenOpened) {
  try {
    OutputFile out(path("no/such/dir/out.json"), "JSON");
    FAIL() << "opened a file in a directory that does not exist";
  } catch (const OutputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot write the JSON " + path("no/such/dir/out.json") +
                                    ": No such file or directory"));
  }
  try {
    OutputFile out(dir_.string(), "report");
    FAIL() << "opened a directory";
  } catch (const OutputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("Is a directory"));
  }
  EXPECT_TRUE(names().empty());
}

TEST_F(OutputFileTest, Finding4_FullDeviceFailsOnCommit) {
  OutputFile out("/dev/full", "JSON");
  out.stream() << std::string(100000, 'x');
  try {
    out.commit();
    FAIL() << "writing to /dev/full succeeded";
  } catch (const OutputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("writing the JSON /dev/full failed: No space left on device"));
  }
  // A short write that stays in the buffer until commit fails too.
  OutputFile small("/dev/full", "JSON");
  small.stream() << "{}\n";
  EXPECT_THROW(small.commit(), OutputError);
}

TEST_F(OutputFileTest, Finding4_DeviceIsWrittenDirectly) {
  OutputFile out("/dev/null", "trace");
  out.stream() << "anything\n";
  EXPECT_NO_THROW(out.commit());
}

// /dev/fd/N (and /dev/stdout) is the descriptor already open, written at
// its offset: not reopened at 0, not replaced by rename.
TEST_F(OutputFileTest, Finding4_OpenDescriptorIsWrittenWhereItStands) {
  const int fd = ::open(path("shared.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "table\n", 6), 6);
  {
    OutputFile out("/dev/fd/" + std::to_string(fd), "JSON");
    out.stream() << "{}\n";
    out.commit();
  }
  ::close(fd);
  EXPECT_EQ(read(path("shared.txt")), "table\n{}\n");
  EXPECT_EQ(names(), std::vector<std::string>{"shared.txt"});
  EXPECT_THROW(OutputFile("/dev/fd/999999", "JSON"), OutputError);
}

TEST_F(OutputFileTest, Finding4_SymbolicLinkIsFollowed) {
  write(path("target.json"), "previous\n");
  fs::create_symlink("target.json", path("link.json"));
  {
    OutputFile out(path("link.json"), "JSON");
    out.stream() << "new\n";
    out.commit();
  }
  EXPECT_TRUE(fs::is_symlink(path("link.json")));
  EXPECT_EQ(read(path("target.json")), "new\n");
  EXPECT_EQ(names(), (std::vector<std::string>{"link.json", "target.json"}));
}

}  // namespace
}  // namespace vfiomm::sim
