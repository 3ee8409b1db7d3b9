// The shared byte formatter and HTML escaper of base/.
#include <gtest/gtest.h>

#include "base/byte_format.h"
#include "base/html_escape.h"

namespace vfiomm {
namespace {

TEST(ByteFormat, TheLargestUnitThatDividesExactly) {
  EXPECT_EQ(formatBytes(32ULL << 30), "32G");
  EXPECT_EQ(formatBytes(3ULL << 19), "1536K");
  EXPECT_EQ(formatBytes(4097), "4097");
  EXPECT_EQ(formatBytes(0), "0");
  EXPECT_EQ(formatBytes(2ULL << 40), "2T");
  EXPECT_EQ(formatBytes(32ULL << 30, ByteStyle::kIec), "32 GiB");
  EXPECT_EQ(formatBytes(1ULL << 20, ByteStyle::kIec), "1 MiB");
  EXPECT_EQ(formatBytes(100, ByteStyle::kIec), "100 B");
}

TEST(HtmlEscape, EscapesMarkupAndBothQuotes) {
  EXPECT_EQ(htmlEscape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(htmlEscape("plain"), "plain");
}

}  // namespace
}  // namespace vfiomm
