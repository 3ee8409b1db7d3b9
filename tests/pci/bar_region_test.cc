#include "pci/bar_region.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "base/byte_units.h"
#include "bound_context.h"
#include "hw/machine.h"
#include "pci/pci_host.h"
#include "pci/pci_regs.h"
#include "pci/standard_device.h"
#include "pci_test_support.h"

namespace vfiomm {
namespace {

const PhysAddr kBar0(kStandardBar0Start);

AccessInfo fromCpu(int cpu, uint64_t seq) { return AccessInfo{cpu, PhysAddr(0), false, seq}; }

class BarRegionTest : public ::testing::Test {
 protected:
  testing::BoundContext boundContext;  // first: the objects below run on it
  void enableMemory() { cfgWrite(dev, kPciCommand, 2, kPciCommandMemory); }
  PhysMemMap& map() { return machine.physMemMap(); }

  Machine machine;
  PciHost host{machine};
  PciBus& bus = host.addBus(PciBusConfig{.number = 1});
  PciDevice& dev = addStandardDevice(host, bus);
  BarRegion& bar0 = *host.barRegion(dev, 0);
};

TEST_F(BarRegionTest, WithDecodeOnAccessesReachMemoryAndRecordNothing) {
  enableMemory();
  const uint64_t accesses = counter("pci.bar.access");
  const uint64_t violations = counter("pci.decode_violation");
  map().write(kBar0 + 0x100, 8, 0x1122'3344'5566'7788ULL, fromCpu(0, 1));
  EXPECT_EQ(map().read(kBar0 + 0x100, 8, fromCpu(0, 2)), 0x1122'3344'5566'7788ULL);
  EXPECT_EQ(map().read(kBar0 + 0x104, 4, fromCpu(0, 3)), 0x1122'3344U);
  EXPECT_EQ(counter("pci.bar.access"), accesses + 3);
  EXPECT_EQ(counter("pci.decode_violation"), violations);
  EXPECT_EQ(bar0.decodeViolationCount(), 0U);
  // Every access must come through the decode check: no page is handed out.
  EXPECT_EQ(bar0.directPage(0x100), nullptr);
}

TEST_F(BarRegionTest, INV1_AccessWithCommandMemoryClearIsAViolation) {
  const uint64_t violations = counter("pci.decode_violation");
  map().write(kBar0 + 0x40, 4, 0xdead'beef, AccessInfo{2, kBar0 + 0x40, true, 7});
  EXPECT_EQ(map().read(kBar0 + 0x40, 4, AccessInfo{3, kBar0 + 0x40, false, 9}), 0xffff'ffffU);

  EXPECT_EQ(bar0.decodeViolationCount(), 2U);
  EXPECT_EQ(counter("pci.decode_violation"), violations + 2);
  const std::vector<BarRegion::DecodeViolation> v = bar0.decodeViolations();
  ASSERT_EQ(v.size(), 2U);
  EXPECT_EQ(v[0].cpu, 2);
  EXPECT_EQ(v[0].addr, kBar0 + 0x40);
  EXPECT_TRUE(v[0].isWrite);
  EXPECT_EQ(v[0].seq, 7U);
  EXPECT_EQ(v[1].cpu, 3);
  EXPECT_FALSE(v[1].isWrite);
  EXPECT_EQ(v[1].seq, 9U);

  enableMemory();
  EXPECT_EQ(map().read(kBar0 + 0x40, 4, {}), 0U) << "the store was dropped";
  EXPECT_EQ(host.decodeViolationCount(), 2U);
}

TEST_F(BarRegionTest, FAULT_10_AccessInD3hotIsAViolationAndD0BringsTheDataBack) {
  enableMemory();
  map().write(kBar0, 8, 42, {});
  cfgWrite(dev, *dev.pmCapOffset() + kPciPmCtrl, 2, 3);
  EXPECT_EQ(map().read(kBar0, 8, {}), ~uint64_t{0});
  EXPECT_EQ(bar0.decodeViolationCount(), 1U);
  cfgWrite(dev, *dev.pmCapOffset() + kPciPmCtrl, 2, 0);
  EXPECT_EQ(map().read(kBar0, 8, {}), 42U);
  EXPECT_EQ(bar0.decodeViolationCount(), 1U);
}

TEST_F(BarRegionTest, AccessDuringFlrIsAViolation) {
  enableMemory();
  map().write(kBar0, 4, 0x5a5a, {});
  uint64_t readDuringReset = 0;
  SchedPointAction during("pci.flr", [&] { readDuringReset = map().read(kBar0, 4, {}); });
  ASSERT_TRUE(dev.flr().has_value());
  EXPECT_EQ(during.runs, 1);
  EXPECT_EQ(readDuringReset, 0xffff'ffffU);
  EXPECT_EQ(bar0.decodeViolationCount(), 1U);
  EXPECT_EQ(map().read(kBar0, 4, {}), 0x5a5aU) << "decode is back after the restore";
  EXPECT_EQ(bar0.decodeViolationCount(), 1U);
}

TEST_F(BarRegionTest, KeepsTheFirstViolationsAndCountsThemAll) {
  const uint64_t n = BarRegion::kMaxKeptViolations + 10;
  for (uint64_t i = 0; i < n; ++i) map().read(kBar0, 1, fromCpu(0, i));
  EXPECT_EQ(bar0.decodeViolationCount(), n);
  const std::vector<BarRegion::DecodeViolation> v = bar0.decodeViolations();
  ASSERT_EQ(v.size(), BarRegion::kMaxKeptViolations);
  EXPECT_EQ(v.front().seq, 0U);
  EXPECT_EQ(v.back().seq, BarRegion::kMaxKeptViolations - 1);
}

TEST_F(BarRegionTest, SubPageBarLeavesTheRestOfItsPageToNobody) {
  enableMemory();
  BarRegion& bar1 = *host.barRegion(dev, 1);
  EXPECT_EQ(bar1.base(), PhysAddr(kStandardBar1Start));
  EXPECT_EQ(bar1.size(), kPageSize);
  const PhysAddr start(kStandardBar1Start);
  map().write(start + 0xf8, 8, 7, {});
  EXPECT_EQ(map().read(start + 0xf8, 8, {}), 7U);

  const uint64_t unclaimed = counter("pci.bar.unclaimed_access");
  map().write(start + 0x100, 8, 7, {});
  EXPECT_EQ(map().read(start + 0x100, 8, {}), ~uint64_t{0});
  EXPECT_EQ(counter("pci.bar.unclaimed_access"), unclaimed + 2);
  EXPECT_EQ(bar1.decodeViolationCount(), 0U) << "not the device's decode";
}

TEST_F(BarRegionTest, IoBarsAreNotInThePhysicalMap) {
  EXPECT_EQ(host.barRegion(dev, 4), nullptr);
  EXPECT_EQ(host.barRegion(dev, 3), nullptr);
  EXPECT_EQ(host.barRegion(dev, 5), nullptr);
  EXPECT_EQ(map().lookup(Pfn::fromPhys(PhysAddr(dev.barStart(4)))), nullptr);
}

TEST_F(BarRegionTest, RomDecodesOnlyWithItsEnableBitAndIgnoresWrites) {
  PciDeviceConfig c = standardDeviceConfig(1, 1);
  c.romSize = 64 * 1024;
  PciDevice& withRom = **host.addDevice(bus, c);
  BarRegion& rom = *host.barRegion(withRom, kPciRomResource);
  const PhysAddr romStart(withRom.romStart());
  cfgWrite(withRom, kPciCommand, 2, kPciCommandMemory);

  EXPECT_EQ(map().read(romStart, 2, {}), 0xffffU);
  EXPECT_EQ(rom.decodeViolationCount(), 1U);
  cfgWrite(withRom, kPciRomAddress, 4,
           static_cast<uint32_t>(withRom.romStart()) | kPciRomAddressEnable);
  EXPECT_EQ(map().read(romStart, 2, {}), 0xaa55U) << "a ROM image's signature";
  map().write(romStart, 2, 0, {});
  EXPECT_EQ(map().read(romStart, 2, {}), 0xaa55U);
  EXPECT_EQ(rom.decodeViolationCount(), 1U);
}

TEST_F(BarRegionTest, A128GiBBarWrittenOnceCostsOnePage) {
  PciDeviceConfig c;
  c.bus = 1;
  c.slot = 2;
  c.bars[0] = BarSpec{128 * kGiB, BarKind::kMem64, true};
  PciDevice& big = **host.addDevice(bus, c);
  cfgWrite(big, kPciCommand, 2, kPciCommandMemory);
  BarRegion& region = *host.barRegion(big, 0);
  EXPECT_EQ(region.size(), 128 * kGiB);
  EXPECT_EQ(region.allocatedPages(), 0U);

  const PhysAddr word = PhysAddr(big.barStart(0)) + 64 * kGiB + 0x18;
  map().write(word, 8, 0xfeed'f00d, {});
  EXPECT_EQ(region.allocatedPages(), 1U);
  EXPECT_EQ(map().read(word, 8, {}), 0xfeed'f00dU);
  EXPECT_EQ(map().read(word + kPageSize, 8, {}), 0U);
  EXPECT_EQ(map().read(PhysAddr(big.barStart(0) + 128 * kGiB - 8), 8, {}), 0U);
  EXPECT_EQ(region.allocatedPages(), 1U);
}

// Readers race a thread turning decode on and off (TSan checks the
// synchronisation). Every read that came back all ones was refused, and
// every refused read was recorded: the data is never all ones.
TEST_F(BarRegionTest, ConcurrentAccessesAndDecodeChangesRecordExactlyTheRefusedAccesses) {
  enableMemory();
  constexpr uint64_t kData = 0x0123'4567'89ab'cdefULL;
  map().write(kBar0 + 0x800, 8, kData, {});
  constexpr int kReaders = 3;
  constexpr int kReads = 4000;
  std::atomic<uint64_t> refused{0};
  std::atomic<bool> wrongData{false};
  std::vector<testing::BoundThread> threads;
  for (int cpu = 0; cpu < kReaders; ++cpu) {
    threads.emplace_back(boundContext.context(), [&, cpu] {
      for (int i = 0; i < kReads; ++i) {
        const uint64_t v = map().read(kBar0 + 0x800, 8, fromCpu(cpu, static_cast<uint64_t>(i)));
        if (v == ~uint64_t{0})
          refused.fetch_add(1);
        else if (v != kData)
          wrongData.store(true);
      }
    });
  }
  threads.emplace_back(boundContext.context(), [&] {
    for (int i = 0; i < 500; ++i) {
      cfgWrite(dev, kPciCommand, 2, 0);
      cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
    }
  });
  for (testing::BoundThread& t : threads) t.join();
  EXPECT_FALSE(wrongData.load());
  EXPECT_EQ(bar0.decodeViolationCount(), refused.load());
}

}  // namespace
}  // namespace vfiomm
