#include "hw/phys_mem_map.h"

#include <gtest/gtest.h>

#include <latch>
#include <thread>
#include <vector>

#include "base/byte_units.h"
#include "base/counter.h"
#include "bound_context.h"

namespace vfiomm {
namespace {

// Records the last access it received; reads return the offset.
class RecordingRegion final : public PhysRegion {
 public:
  using PhysRegion::PhysRegion;
  uint64_t lastOffset = ~uint64_t{0};
  uint64_t lastValue = 0;
  AccessInfo lastInfo;

 protected:
  uint64_t doRead(uint64_t offset, unsigned /*size*/, const AccessInfo& info) override {
    lastOffset = offset;
    lastInfo = info;
    return offset;
  }
  void doWrite(uint64_t offset, unsigned /*size*/, uint64_t value,
               const AccessInfo& info) override {
    lastOffset = offset;
    lastValue = value;
    lastInfo = info;
  }
};

uint64_t counter(const char* name) { return CounterSet::current().snapshot().get(name); }

TEST(RamRegion, UntouchedMemoryReadsZeroAndAllocatesNothing) {
  RamRegion ram("ram", PhysAddr(0), 16 * kPageSize);
  for (unsigned size : {1U, 2U, 4U, 8U}) EXPECT_EQ(ram.read(8 * kPageSize, size, {}), 0U);
  EXPECT_EQ(ram.allocatedPages(), 0U);
}

TEST(RamRegion, ReadsBackEveryAccessSizeLittleEndian) {
  RamRegion ram("ram", PhysAddr(0), kPageSize);
  ram.write(0, 8, 0x1122'3344'5566'7788ULL, {});
  EXPECT_EQ(ram.read(0, 8, {}), 0x1122'3344'5566'7788ULL);
  EXPECT_EQ(ram.read(0, 4, {}), 0x5566'7788U);
  EXPECT_EQ(ram.read(4, 4, {}), 0x1122'3344U);
  EXPECT_EQ(ram.read(6, 2, {}), 0x1122U);
  EXPECT_EQ(ram.read(1, 1, {}), 0x77U);

  // A narrow store replaces only its bytes, and only its size is stored.
  ram.write(2, 2, 0xffff'aabbULL, {});
  EXPECT_EQ(ram.read(0, 8, {}), 0x1122'3344'aabb'7788ULL);
  ram.write(7, 1, 0x99, {});
  EXPECT_EQ(ram.read(0, 8, {}), 0x9922'3344'aabb'7788ULL);
  EXPECT_EQ(ram.allocatedPages(), 1U);
}

TEST(RamRegion, IsSparseA128GiBRegionWrittenOnceCostsOnePage) {
  RamRegion ram("big", PhysAddr(256 * kGiB), 128 * kGiB);
  const uint64_t offset = 64 * kGiB;
  ram.write(offset, 8, 0xfeed'beefULL, {});
  EXPECT_EQ(ram.allocatedPages(), 1U);
  EXPECT_EQ(ram.read(offset, 8, {}), 0xfeed'beefULL);
  // Same page: no new allocation; neighbours still read zero.
  ram.write(offset + 8, 4, 1, {});
  EXPECT_EQ(ram.allocatedPages(), 1U);
  EXPECT_EQ(ram.read(offset + kPageSize, 8, {}), 0U);
  EXPECT_EQ(ram.read(offset - 8, 8, {}), 0U);
  EXPECT_EQ(ram.read(128 * kGiB - 8, 8, {}), 0U);
  EXPECT_EQ(ram.allocatedPages(), 1U);
}

TEST(RamRegion, ConcurrentNarrowStoresToOneWordAllSurvive) {
  RamRegion ram("ram", PhysAddr(0), kPageSize);
  std::latch start(8);
  std::vector<std::thread> threads;
  for (unsigned byte = 0; byte < 8; ++byte)
    threads.emplace_back([&, byte] {
      start.arrive_and_wait();
      for (unsigned i = 0; i < 1000; ++i) ram.write(byte, 1, (i + byte) & 0xff, {});
      ram.write(byte, 1, 0xa0 + byte, {});
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ram.read(0, 8, {}), 0xa7a6'a5a4'a3a2'a1a0ULL);
  EXPECT_EQ(ram.allocatedPages(), 1U);
}

TEST(RamRegionDeathTest, UnalignedOrOutsideAccessIsAModelBug) {
  RamRegion ram("ram", PhysAddr(0), kPageSize);
  EXPECT_DEATH(ram.read(4, 8, {}), "unaligned");
  EXPECT_DEATH(ram.read(0, 3, {}), "bad access size");
  EXPECT_DEATH(ram.write(kPageSize, 4, 0, {}), "outside its region");
}

TEST(PhysMemMap, RoutesPfnsToTheirRegionWithRegionRelativeOffsets) {
  testing::BoundContext bound;
  PhysMemMap map;
  RecordingRegion low("low", PhysAddr(0x1000'0000), 4 * kPageSize);
  RecordingRegion high("high", PhysAddr(0x2000'0000), kPmdSize);
  map.registerRegion(high);
  map.registerRegion(low);
  EXPECT_EQ(map.regionCount(), 2U);

  EXPECT_EQ(map.lookup(Pfn(0x1000'0)), &low);
  EXPECT_EQ(map.lookup(Pfn(0x1000'3)), &low);
  EXPECT_EQ(map.lookup(Pfn(0x1000'4)), nullptr);  // just past `low`
  EXPECT_EQ(map.lookup(Pfn(0x0fff'f)), nullptr);
  EXPECT_EQ(map.lookup(Pfn(0x2000'0) + 511), &high);
  EXPECT_EQ(map.lookup(Pfn(0x2000'0) + 512), nullptr);

  const AccessInfo info{2, PhysAddr(0x2000'0000 + 0x1238), false, 7};
  EXPECT_EQ(map.read(PhysAddr(0x2000'1238), 8, info), 0x1238U);
  EXPECT_EQ(high.lastInfo.cpu, 2);
  EXPECT_EQ(high.lastInfo.seq, 7U);
  map.write(PhysAddr(0x1000'2ffc), 4, 0x1'2345'6789ULL, {});
  EXPECT_EQ(low.lastOffset, 0x2ffcU);
  EXPECT_EQ(low.lastValue, 0x2345'6789U) << "a 4-byte store carries 4 bytes";

  map.unregisterRegion(low);
  EXPECT_EQ(map.lookup(Pfn(0x1000'0)), nullptr);
  EXPECT_EQ(map.lookup(Pfn(0x2000'0)), &high);
}

TEST(PhysMemMap, UnassignedAccessReadsAllOnesDropsWritesAndCounts) {
  testing::BoundContext bound;
  PhysMemMap map;
  RamRegion ram("ram", PhysAddr(0), kPageSize);
  map.registerRegion(ram);
  const uint64_t before = counter("hw.phys.unassigned_access");
  EXPECT_EQ(map.read(PhysAddr(kPageSize), 8, {}), ~uint64_t{0});
  EXPECT_EQ(map.read(PhysAddr(kPageSize), 4, {}), 0xffff'ffffU);
  EXPECT_EQ(map.read(PhysAddr(kPageSize + 2), 2, {}), 0xffffU);
  EXPECT_EQ(map.read(PhysAddr(kPageSize + 1), 1, {}), 0xffU);
  map.write(PhysAddr(kPageSize), 8, 42, {});
  EXPECT_EQ(counter("hw.phys.unassigned_access") - before, 5U);
  EXPECT_EQ(ram.allocatedPages(), 0U);
  // The registered page is unaffected and really is memory.
  map.write(PhysAddr(8), 8, 42, {});
  EXPECT_EQ(map.read(PhysAddr(8), 8, {}), 42U);
  EXPECT_EQ(counter("hw.phys.unassigned_access") - before, 5U);
}

TEST(PhysMemMapDeathTest, OverlappingRegionsAreAModelBug) {
  PhysMemMap map;
  RamRegion a("a", PhysAddr(0x10'0000), 4 * kPageSize);
  RamRegion tail("tail", PhysAddr(0x10'3000), 4 * kPageSize);
  RamRegion head("head", PhysAddr(0x0f'f000), 2 * kPageSize);
  map.registerRegion(a);
  EXPECT_DEATH(map.registerRegion(tail), "overlap");
  EXPECT_DEATH(map.registerRegion(head), "overlap");
  EXPECT_DEATH(map.registerRegion(a), "overlap");
  RamRegion adjacent("adjacent", PhysAddr(0x10'4000), kPageSize);
  map.registerRegion(adjacent);  // touching is not overlapping
  EXPECT_EQ(map.lookup(Pfn(0x104)), &adjacent);
}

// Lookups run on every TLB miss while a device (un)registers its BARs.
TEST(PhysMemMap, LookupsRaceWithRegistrationAndSeeWholeSnapshots) {
  testing::BoundContext bound;
  PhysMemMap map;
  RamRegion fixed("fixed", PhysAddr(0), kPmdSize);
  RamRegion coming("coming", PhysAddr(kGiB), kPmdSize);
  map.registerRegion(fixed);
  constexpr int kReaders = 2;
  std::latch start(kReaders + 1);
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  std::atomic<uint64_t> wrong{0};
  for (int r = 0; r < kReaders; ++r)
    readers.emplace_back([&] {
      start.arrive_and_wait();
      while (!stop.load(std::memory_order_relaxed)) {
        if (map.lookup(Pfn(5)) != &fixed) wrong.fetch_add(1);
        PhysRegion* c = map.lookup(Pfn::fromPhys(PhysAddr(kGiB + kPageSize)));
        if (c != nullptr && c != &coming) wrong.fetch_add(1);
      }
    });
  start.arrive_and_wait();
  for (int i = 0; i < 500; ++i) {
    map.registerRegion(coming);
    map.unregisterRegion(coming);
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0U);
}

}  // namespace
}  // namespace vfiomm
