#include "pci/config_space.h"

#include <gtest/gtest.h>

namespace vfiomm {
namespace {

TEST(ConfigSpace, SoftwareWritesChangeOnlyWritableBits) {
  ConfigSpace cs(kPciCfgSpaceSize);
  cs.set(0x10, 4, 0x0000'000c);          // hardwired type bits
  cs.setWritable(0x10, 4, 0xffff'0000);  // a 64 KiB BAR's address bits
  cs.write(0x10, 4, 0xffff'ffff);
  EXPECT_EQ(cs.read(0x10, 4), 0xffff'000cU);
  cs.write(0x12, 2, 0x1234);
  EXPECT_EQ(cs.read(0x10, 4), 0x1234'000cU);
  cs.write(0x10, 1, 0xff);
  EXPECT_EQ(cs.read(0x10, 4), 0x1234'000cU) << "nothing writable in the low byte";
}

TEST(ConfigSpace, IsLittleEndianAndSetIgnoresTheWriteMask) {
  ConfigSpace cs(kPciCfgSpaceExpSize);
  cs.set(0xffc, 4, 0x1122'3344);
  EXPECT_EQ(cs.read(0xffc, 1), 0x44U);
  EXPECT_EQ(cs.read(0xffe, 2), 0x1122U);
  EXPECT_EQ(cs.size(), kPciCfgSpaceExpSize);
  cs.write(0xffc, 4, 0);
  EXPECT_EQ(cs.read(0xffc, 4), 0x1122'3344U) << "read-only until made writable";
}

}  // namespace
}  // namespace vfiomm
