#include "pci/pci_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "base/byte_units.h"
#include "base/page_geometry.h"

namespace vfiomm {
namespace {

TEST(PciAllocator, PlacesEverySizeFrom64KiBTo128GiBNaturallyAligned) {
  PciAllocator alloc{HostBridgeWindows{}};
  std::vector<std::pair<uint64_t, uint64_t>> placed;  // start, size
  // Smallest first, the order that leaves the most holes to step over.
  for (uint64_t size = 64 * kKiB; size <= 128 * kGiB; size <<= 1) {
    const Result<uint64_t> start = alloc.allocate(PciWindow::kMem64, size);
    ASSERT_TRUE(start.has_value()) << size;
    EXPECT_TRUE(isAligned(*start, size)) << std::hex << *start << " for " << size;
    EXPECT_GE(*start, HostBridgeWindows{}.mem64.start);
    EXPECT_LE(*start + size, HostBridgeWindows{}.mem64.end);
    placed.emplace_back(*start, size);
  }
  std::sort(placed.begin(), placed.end());
  for (size_t i = 1; i < placed.size(); ++i)
    EXPECT_LE(placed[i - 1].first + placed[i - 1].second, placed[i].first) << "overlap";
}

TEST(PciAllocator, LargestFirstPacksWithoutHoles) {
  PciAllocator alloc{HostBridgeWindows{}};
  EXPECT_EQ(alloc.allocate(PciWindow::kMem32, 1 << 20).value(), 0xE000'0000U);
  EXPECT_EQ(alloc.allocate(PciWindow::kMem32, 64 * kKiB).value(), 0xE010'0000U);
  EXPECT_EQ(alloc.allocate(PciWindow::kMem32, 64 * kKiB).value(), 0xE011'0000U);
  // A larger BAR now steps over the smaller ones to its own alignment.
  EXPECT_EQ(alloc.allocate(PciWindow::kMem32, 1 << 20).value(), 0xE020'0000U);
}

TEST(PciAllocator, SubPageBarsGetAPageEach) {
  PciAllocator alloc{HostBridgeWindows{}};
  const uint64_t a = alloc.allocate(PciWindow::kMem32, 256).value();
  const uint64_t b = alloc.allocate(PciWindow::kMem32, 256).value();
  EXPECT_TRUE(isPageAligned(a));
  EXPECT_TRUE(isPageAligned(b));
  EXPECT_NE(pageAlignDown(a), pageAlignDown(b));
}

TEST(PciAllocator, FixedRangesAreAvoidedAndCannotOverlap) {
  PciAllocator alloc{HostBridgeWindows{}};
  ASSERT_TRUE(alloc.reserve(PciWindow::kMem32, 0xE000'0000, 64 * kKiB).has_value());
  EXPECT_EQ(alloc.allocate(PciWindow::kMem32, 64 * kKiB).value(), 0xE001'0000U);
  EXPECT_EQ(alloc.reserve(PciWindow::kMem32, 0xE000'8000, 4 * kKiB).error(), Errno::kEBUSY);
  EXPECT_EQ(alloc.reserve(PciWindow::kMem64, 0xE001'0000, 4 * kKiB).error(), Errno::kEBUSY)
      << "both memory windows are one address space";
  // Memory is claimed by page: two sub-page BARs cannot share one.
  ASSERT_TRUE(alloc.reserve(PciWindow::kMem32, 0xF001'0100, 256).has_value());
  EXPECT_EQ(alloc.reserve(PciWindow::kMem32, 0xF001'0000, 256).error(), Errno::kEBUSY);
  // Ports are another address space.
  EXPECT_TRUE(alloc.reserve(PciWindow::kIo, 0xE000'0000, 32).has_value());
}

TEST(PciAllocator, IoPortsAreAlignedToTheirSizeWithoutPageRounding) {
  PciAllocator alloc{HostBridgeWindows{}};
  EXPECT_EQ(alloc.allocate(PciWindow::kIo, 32).value(), 0x1000U);
  EXPECT_EQ(alloc.allocate(PciWindow::kIo, 32).value(), 0x1020U);
  EXPECT_EQ(alloc.allocate(PciWindow::kIo, 256).value(), 0x1100U);
}

TEST(PciAllocator, AFullWindowIsEnospc) {
  HostBridgeWindows small;
  small.mem32 = {0xE000'0000, 0xE002'0000};
  PciAllocator alloc{small};
  EXPECT_EQ(alloc.allocate(PciWindow::kMem32, 256 * kKiB).error(), Errno::kENOSPC);
  EXPECT_TRUE(alloc.allocate(PciWindow::kMem32, 64 * kKiB).has_value());
  EXPECT_TRUE(alloc.allocate(PciWindow::kMem32, 64 * kKiB).has_value());
  EXPECT_EQ(alloc.allocate(PciWindow::kMem32, 4 * kKiB).error(), Errno::kENOSPC);
}

}  // namespace
}  // namespace vfiomm
