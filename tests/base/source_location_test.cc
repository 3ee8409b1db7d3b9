#include "base/source_location.h"

#include <gtest/gtest.h>

#include <string_view>

namespace vfiomm {
namespace {

SourceLocation here(SourceLocation where = SourceLocation::current()) { return where; }

// The location is packed into two words (the line beside the function
// name's address); every part must read back as the call site wrote it.
TEST(SourceLocation, TheCallSitesFileLineAndFunctionReadBack) {
  const unsigned line = __LINE__ + 1;
  const SourceLocation at = here();
  EXPECT_EQ(at.line(), line);
  EXPECT_TRUE(std::string_view(at.file_name()).ends_with("source_location_test.cc"));
  EXPECT_EQ(std::string_view(at.function_name()), __func__);
  static_assert(sizeof(SourceLocation) == 16, "two registers, not memory");
}

TEST(SourceLocation, ALineBeyondSixteenBitsReadsAsTheLargestAndKeepsTheName) {
  const SourceLocation at = SourceLocation::current("f.cc", 70000, "fn");
  EXPECT_EQ(at.line(), 65535U);
  EXPECT_EQ(std::string_view(at.function_name()), "fn");
  EXPECT_EQ(std::string_view(at.file_name()), "f.cc");
}

TEST(SourceLocation, TheDefaultIsEmpty) {
  const SourceLocation none;
  EXPECT_EQ(none.line(), 0U);
  EXPECT_EQ(std::string_view(none.function_name()), "");
  EXPECT_EQ(std::string_view(none.file_name()), "");
}

}  // namespace
}  // namespace vfiomm
