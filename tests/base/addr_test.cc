#include "base/addr.h"

#include <gtest/gtest.h>

#include "base/page_geometry.h"

namespace vfiomm {
namespace {

TEST(PageGeometry, X86_64FourLevelShiftsAndOrders) {
  EXPECT_EQ(kPageSize, 4096U);
  EXPECT_EQ(kPmdSize, 2U << 20);
  EXPECT_EQ(kPudSize, 1U << 30);
  EXPECT_EQ(kPmdOrder, 9U);
  EXPECT_EQ(kPudOrder, 18U);
  EXPECT_EQ(levelShift(PtLevel::kPgd), 39U);
  EXPECT_EQ(levelSize(PtLevel::kPud), kPudSize);
  EXPECT_EQ(levelOrder(PtLevel::kPmd), kPmdOrder);
}

TEST(Addr, TableIndexSplitsAVirtualAddressLikeTheMmu) {
  // 0x7f12_3456_7000: pgd 254, pud 72, pmd 418, pte 359.
  VirtAddr va(0x7f1234567000);
  EXPECT_EQ(va.tableIndex(PtLevel::kPgd), (0x7f1234567000ULL >> 39) & 511);
  EXPECT_EQ(va.tableIndex(PtLevel::kPud), (0x7f1234567000ULL >> 30) & 511);
  EXPECT_EQ(va.tableIndex(PtLevel::kPmd), (0x7f1234567000ULL >> 21) & 511);
  EXPECT_EQ(va.tableIndex(PtLevel::kPte), (0x7f1234567000ULL >> 12) & 511);
}

TEST(Addr, ConversionsAreExplicitAndExact) {
  EXPECT_EQ(Pfn::fromPhys(PhysAddr(0xF0005000)), Pfn(0xF0005));
  EXPECT_EQ(Pfn(0xF0005).toPhys(), PhysAddr(0xF0005000));
  EXPECT_EQ(PgOff::fromBytes(2ULL << 40).value(), 2ULL << 28);
  EXPECT_TRUE(Pfn(0x4000000).isAligned(kPudOrder));
  EXPECT_FALSE(Pfn(0x4000001).isAligned(kPmdOrder));
  EXPECT_EQ(VirtAddr(0x201000).alignDown(kPmdSize), VirtAddr(0x200000));
  EXPECT_EQ(VirtAddr(0x201000).alignUp(kPmdSize), VirtAddr(0x400000));
  static_assert(!std::is_convertible_v<VirtAddr, PhysAddr>);
  static_assert(!std::is_convertible_v<uint64_t, Pfn>);
}

TEST(Addr, FormatsAsItsNumber) { EXPECT_EQ(fmt::format("{:#x}", Pfn(0xf0010)), "0xf0010"); }

}  // namespace
}  // namespace vfiomm
