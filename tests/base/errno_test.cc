#include "base/errno.h"

#include <gtest/gtest.h>

#include "base/result.h"

namespace vfiomm {
namespace {

TEST(Errno, ValuesAreLinuxs) {
  EXPECT_EQ(toInt(Errno::kEINVAL), 22);
  EXPECT_EQ(toInt(Errno::kEBUSY), 16);
  EXPECT_EQ(toInt(Errno::kEOPNOTSUPP), 95);
  EXPECT_EQ(toInt(Errno::kEOVERFLOW), 75);
  EXPECT_EQ(errnoName(Errno::kEACCES), "EACCES");
  EXPECT_EQ(fmt::format("{}", Errno::kENODEV), "ENODEV");
}

Result<int> half(int v) {
  if (v % 2 != 0) return fail(Errno::kEINVAL);
  return v / 2;
}

TEST(Result, CarriesAValueOrAnErrno) {
  EXPECT_EQ(half(8).value(), 4);
  ASSERT_FALSE(half(3).has_value());
  EXPECT_EQ(half(3).error(), Errno::kEINVAL);
}

}  // namespace
}  // namespace vfiomm
