#include "pci/pci_host.h"

#include <gtest/gtest.h>

#include <memory>

#include "base/byte_units.h"
#include "bound_context.h"
#include "hw/machine.h"
#include "pci/pci_regs.h"
#include "pci/standard_device.h"
#include "pci_test_support.h"

namespace vfiomm {
namespace {

class PciHostTest : public ::testing::Test {
 protected:
  testing::BoundContext boundContext;  // first: the objects below run on it
  PhysMemMap& map() { return machine.physMemMap(); }
  PhysRegion* regionAt(uint64_t pa) { return map().lookup(Pfn::fromPhys(PhysAddr(pa))); }

  Machine machine;
  PciHost host{machine};
  PciBus& bus = host.addBus(PciBusConfig{.number = 1});
};

TEST_F(PciHostTest, StandardDeviceDSitsAtTheSpecAddresses) {
  PciDevice& d = addStandardDevice(host, bus);
  EXPECT_EQ(d.name(), "0000:01:00.0");
  EXPECT_EQ(d.barStart(0), 0xF000'0000U);
  EXPECT_EQ(d.barLen(0), 64 * kKiB);
  EXPECT_EQ(d.barStart(1), 0xF001'0000U);
  EXPECT_EQ(d.barLen(1), 256U);
  EXPECT_EQ(d.barStart(2), 0x40'0000'0000U);
  EXPECT_EQ(d.barLen(2), 2 * kGiB);
  EXPECT_TRUE(d.barIs64(2));
  EXPECT_TRUE(d.barPrefetchable(2));
  EXPECT_EQ(d.barLen(3), 0U);
  EXPECT_TRUE(d.barIsIo(4));
  EXPECT_EQ(d.barLen(4), 32U);
  EXPECT_EQ(d.barStart(4), 0x1000U) << "the first port of the I/O window";
  EXPECT_EQ(d.barLen(5), 0U);
  EXPECT_EQ(d.romLen(), 0U);
  EXPECT_TRUE(d.hasFlr());
  EXPECT_TRUE(d.resetFunctionAvailable());
  EXPECT_TRUE(d.pmCapOffset().has_value());

  // The hardware registers hold what the kernel assigned.
  EXPECT_EQ(cfgRead(d, pciBaseAddress(0), 4), 0xF000'0000U);
  EXPECT_EQ(cfgRead(d, pciBaseAddress(1), 4), 0xF001'0000U);
  EXPECT_EQ(cfgRead(d, pciBaseAddress(2), 4),
            kPciBaseAddressMemType64 | kPciBaseAddressMemPrefetch);
  EXPECT_EQ(cfgRead(d, pciBaseAddress(3), 4), 0x40U);
  EXPECT_EQ(cfgRead(d, pciBaseAddress(4), 4), 0x1001U);

  // The physical map routes each BAR's pages to its region.
  EXPECT_EQ(regionAt(0xF000'0000), host.barRegion(d, 0));
  EXPECT_EQ(regionAt(0xF000'F000), host.barRegion(d, 0));
  EXPECT_EQ(regionAt(0xF001'0000), host.barRegion(d, 1));
  EXPECT_EQ(regionAt(0x40'0000'0000), host.barRegion(d, 2));
  EXPECT_EQ(regionAt(0x40'7fff'f000), host.barRegion(d, 2));
  EXPECT_EQ(regionAt(0x40'8000'0000), nullptr);
  EXPECT_EQ(map().regionCount(), 3U);
  EXPECT_EQ(bus.devices().size(), 1U);
}

TEST_F(PciHostTest, REG_03_SubPageBarAtAnUnalignedPageOffset) {
  ResourcePlacement p;
  p.bars[1] = 0xF001'0100;
  PciDevice& d = **host.addDevice(bus, standardDeviceConfig(1), p);
  EXPECT_EQ(d.barStart(1), 0xF001'0100U);
  EXPECT_EQ(cfgRead(d, pciBaseAddress(1), 4), 0xF001'0100U);
  EXPECT_EQ(regionAt(0xF001'0000), host.barRegion(d, 1));
  cfgWrite(d, kPciCommand, 2, kPciCommandMemory);
  map().write(PhysAddr(0xF001'0100), 4, 9, {});
  EXPECT_EQ(map().read(PhysAddr(0xF001'0100), 4, {}), 9U);
  EXPECT_EQ(map().read(PhysAddr(0xF001'00fc), 4, {}), 0xffff'ffffU) << "below the BAR";
}

TEST_F(PciHostTest, AllocatesLargestFirstEachNaturallyAligned) {
  PciDeviceConfig c;
  c.bus = 1;
  c.bars[0] = BarSpec{64 * kKiB, BarKind::kMem32, false};
  c.bars[1] = BarSpec{1 << 20, BarKind::kMem32, false};
  c.bars[2] = BarSpec{8 * kGiB, BarKind::kMem64, true};
  c.bars[4] = BarSpec{128 * kGiB, BarKind::kMem64, true};
  c.romSize = 128 * kKiB;
  PciDevice& d = **host.addDevice(bus, c);
  EXPECT_EQ(d.barStart(4), 0x40'0000'0000U);
  EXPECT_EQ(d.barStart(2), 0x60'0000'0000U);
  EXPECT_EQ(d.barStart(1), 0xE000'0000U);
  EXPECT_EQ(d.romStart(), 0xE010'0000U);
  EXPECT_EQ(d.barStart(0), 0xE012'0000U);
  EXPECT_EQ(map().regionCount(), 5U) << "four memory BARs and the ROM";
  EXPECT_EQ(regionAt(d.romStart()), host.barRegion(d, kPciRomResource));
}

TEST_F(PciHostTest, EveryBarSizeFrom64KiBTo128GiBIsNaturallyAligned) {
  uint8_t slot = 0;
  for (uint64_t size = 64 * kKiB; size <= 128 * kGiB; size <<= 1) {
    PciDeviceConfig c;
    c.bus = 1;
    c.slot = slot++;
    c.bars[0] = BarSpec{size, BarKind::kMem64, true};
    const Result<PciDevice*> d = host.addDevice(bus, c);
    ASSERT_TRUE(d.has_value()) << size;
    EXPECT_TRUE(isAligned((*d)->barStart(0), size)) << std::hex << (*d)->barStart(0);
    EXPECT_EQ(regionAt((*d)->barStart(0)), host.barRegion(**d, 0));
    EXPECT_EQ(regionAt((*d)->barStart(0) + size - kPageSize), host.barRegion(**d, 0));
  }
}

TEST_F(PciHostTest, AFailedPlacementAddsNothing) {
  addStandardDevice(host, bus);
  const size_t regions = map().regionCount();

  // BAR0 fits, BAR1's page is D's: the claim of BAR0 is undone.
  ResourcePlacement taken;
  taken.bars[0] = 0xE000'0000;
  taken.bars[1] = 0xF001'0000;
  EXPECT_EQ(host.addDevice(bus, standardDeviceConfig(1, 1), taken).error(), Errno::kEBUSY);
  ResourcePlacement misaligned;
  misaligned.bars[0] = 0xE000'8000;  // a 64 KiB BAR
  EXPECT_EQ(host.addDevice(bus, standardDeviceConfig(1, 1), misaligned).error(), Errno::kEINVAL);
  ResourcePlacement above4G;
  above4G.bars[0] = 0x1'0000'0000;  // a 32-bit BAR
  EXPECT_EQ(host.addDevice(bus, standardDeviceConfig(1, 1), above4G).error(), Errno::kEINVAL);
  HostBridgeWindows tiny;
  tiny.mem64 = {0x40'0000'0000, 0x40'4000'0000};  // 1 GiB: D's 2 GiB BAR cannot fit
  PciHost small(machine, tiny);
  PciBus& smallBus = small.addBus(PciBusConfig{.number = 2});
  EXPECT_EQ(small.addDevice(smallBus, standardDeviceConfig(2)).error(), Errno::kENOSPC);

  EXPECT_EQ(map().regionCount(), regions);
  EXPECT_EQ(bus.devices().size(), 1U);
  EXPECT_TRUE(smallBus.devices().empty());
  // What the failures tried to claim is still free.
  ResourcePlacement free;
  free.bars[0] = 0xE000'0000;
  EXPECT_TRUE(host.addDevice(bus, standardDeviceConfig(1, 1), free).has_value());
}

TEST_F(PciHostTest, DestroyingTheHostTakesItsRegionsOutOfTheMap) {
  const size_t before = map().regionCount();
  {
    PciHost other(machine, HostBridgeWindows{.mem32 = {0xD000'0000, 0xE000'0000},
                                             .mem64 = {0x100'0000'0000, 0x200'0000'0000},
                                             .io = {0x1000, 0x1'0000}});
    PciBus& b = other.addBus(PciBusConfig{.number = 3});
    ASSERT_TRUE(other.addDevice(b, standardDeviceConfig(3)).has_value());
    EXPECT_EQ(map().regionCount(), before + 3);
  }
  EXPECT_EQ(map().regionCount(), before);
}

}  // namespace
}  // namespace vfiomm
