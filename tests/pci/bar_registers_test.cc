#include "pci/bar_registers.h"

#include <gtest/gtest.h>

#include "bound_context.h"
#include "hw/machine.h"
#include "pci/bar_region.h"
#include "pci/pci_host.h"
#include "pci/pci_regs.h"
#include "pci_test_support.h"

namespace vfiomm {
namespace {

std::vector<BarRegisterSpec> eduLike() {
  return {
      {"id", 0x00, 4, 0x010000ed, 0},
      {"scratch", 0x04, 4, 0, 0xffff'ffff},
      {"status", 0x20, 4, 0x1, 0x80},
      {"dma", 0x80, 8, 0, ~uint64_t{0}},
  };
}

TEST(BarRegisters, ImplementedRegistersReadTheirValueHolesTheDefault) {
  BarRegisters regs(0x1000, eduLike(), 0xff);
  EXPECT_EQ(regs.read(0x00, 4, 0), 0x010000edU);
  EXPECT_EQ(regs.read(0x10, 4, 0), 0xffff'ffffU);  // a hole
  EXPECT_EQ(regs.read(0x02, 2, 0), 0x0100U);       // part of a register
  // An 8-byte read over a register and a hole: byte by byte.
  EXPECT_EQ(regs.read(0x20, 8, 0), 0xffff'ffff'0000'0001ULL);
  BarRegisters zeros(0x1000, eduLike(), 0x00);
  EXPECT_EQ(zeros.read(0x10, 4, 0), 0U);
}

TEST(BarRegisters, WritesLatchOnlyWritableBitsAndHolesDropThem) {
  BarRegisters regs(0x1000, eduLike(), 0x00);
  regs.write(0x00, 4, 0xdead'beef, 0);  // read-only
  EXPECT_EQ(regs.read(0x00, 4, 0), 0x010000edU);
  regs.write(0x04, 4, 0x1234'5678, 0);
  EXPECT_EQ(regs.read(0x04, 4, 0), 0x1234'5678U);
  regs.write(0x05, 1, 0xaa, 0);  // a narrow write merges
  EXPECT_EQ(regs.read(0x04, 4, 0), 0x1234'aa78U);
  regs.write(0x20, 4, 0xffff'fffe, 0);  // only bit 7 latches; bit 0 keeps its reset value
  EXPECT_EQ(regs.read(0x20, 4, 0), 0x81U);
  regs.write(0x10, 4, 0x5555'5555, 0);
  EXPECT_EQ(regs.read(0x10, 4, 0), 0U);
  regs.write(0x80, 8, 0x0123'4567'89ab'cdefULL, 0);
  EXPECT_EQ(regs.read(0x80, 8, 0), 0x0123'4567'89ab'cdefULL);
}

TEST(BarRegisters, AResetSeenAtTheNextAccessRestoresResetValues) {
  BarRegisters regs(0x1000, eduLike(), 0x00);
  regs.write(0x04, 4, 0x1234'5678, 0);
  regs.write(0x20, 4, 0x80, 0);
  EXPECT_EQ(regs.read(0x04, 4, 0), 0x1234'5678U);
  EXPECT_EQ(regs.read(0x04, 4, 1), 0U);  // the device went through a reset
  EXPECT_EQ(regs.read(0x20, 4, 1), 0x1U);
  regs.write(0x04, 4, 7, 1);
  EXPECT_EQ(regs.read(0x04, 4, 1), 7U);  // no second reset for the same count
}

TEST(BarRegisters, DescriptionsAreChecked) {
  EXPECT_EQ(checkBarRegisters(0x100, eduLike()).find("outside"), std::string::npos);
  EXPECT_NE(checkBarRegisters(0x40, eduLike()).find("register 'dma' at 0x80 is outside"),
            std::string::npos);
  EXPECT_NE(checkBarRegisters(0x100, {{"a", 0x2, 4, 0, 0}}).find("not aligned"), std::string::npos);
  EXPECT_NE(checkBarRegisters(0x100, {{"a", 0x0, 3, 0, 0}}).find("size 3"), std::string::npos);
  EXPECT_NE(checkBarRegisters(0x100, {{"a", 0x0, 8, 0, 0}, {"b", 0x4, 4, 0, 0}}).find("overlaps"),
            std::string::npos);
  EXPECT_NE(checkBarRegisters(0x100, {{"a", 0x0, 2, 0x10000, 0}}).find("wider"), std::string::npos);
}

// A registers BAR behind a device: resets of the function reach it.
class RegistersBarTest : public ::testing::Test {
 protected:
  testing::BoundContext boundContext;  // first: the objects below run on it
  static PciDeviceConfig config() {
    PciDeviceConfig c;
    c.vendorId = 0x1234;
    c.deviceId = 0x11e8;
    c.bus = 1;
    c.bars[0] = BarSpec{.size = 0x10'0000,
                        .backing = BarBacking::kRegisters,
                        .registers = eduLike(),
                        .unimplemented = 0xff};
    c.bars[1] = BarSpec{.size = 0x1000};  // memory, for contrast
    c.pm = PmCapSpec{.noSoftReset = false};
    c.pcie = PcieCapSpec{.flr = true};
    c.msix = MsixSpec{.bar = 0, .tableOffset = 0x8000, .vectors = 2};
    return c;
  }
  void SetUp() override { cfgWrite(dev, kPciCommand, 2, kPciCommandMemory); }
  uint64_t read(unsigned bar, uint64_t off, unsigned size) {
    return host.barRegion(dev, bar)->read(off + (bar == 0 ? base0 : base1), size, {});
  }
  void write(unsigned bar, uint64_t off, unsigned size, uint64_t v) {
    host.barRegion(dev, bar)->write(off + (bar == 0 ? base0 : base1), size, v, {});
  }

  Machine machine;
  PciHost host{machine};
  PciBus& bus = host.addBus(PciBusConfig{.number = 1});
  PciDevice& dev = **host.addDevice(bus, config());
  uint64_t base0 = dev.barStart(0) - host.barRegion(dev, 0)->base().value();
  uint64_t base1 = dev.barStart(1) - host.barRegion(dev, 1)->base().value();
};

TEST_F(RegistersBarTest, FlrPutsRegistersBackAndLeavesMemoryAlone) {
  write(0, 0x04, 4, 0xcafe);
  write(1, 0x04, 4, 0xcafe);
  EXPECT_EQ(read(0, 0x04, 4), 0xcafeU);
  EXPECT_EQ(read(0, 0x40, 4), 0xffff'ffffU);  // unimplemented
  write(0, 0x40, 4, 0);
  EXPECT_EQ(read(0, 0x40, 4), 0xffff'ffffU);  // dropped
  ASSERT_TRUE(dev.flr().has_value());
  EXPECT_EQ(read(0, 0x04, 4), 0U);
  EXPECT_EQ(read(0, 0x00, 4), 0x010000edU);
  EXPECT_EQ(read(1, 0x04, 4), 0xcafeU);  // memory is not a register
}

TEST_F(RegistersBarTest, PmResetAndBusResetPutRegistersBack) {
  write(0, 0x04, 4, 1);
  ASSERT_TRUE(dev.tryResetFunction().has_value());  // FLR
  EXPECT_EQ(read(0, 0x04, 4), 0U);
  write(0, 0x04, 4, 2);
  // D3hot -> D0 without NoSoftRst: the internal reset.
  cfgWrite(dev, *dev.pmCapOffset() + kPciPmCtrl, 2, 3);
  cfgWrite(dev, *dev.pmCapOffset() + kPciPmCtrl, 2, 0);
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
  EXPECT_EQ(read(0, 0x04, 4), 0U);
  write(0, 0x04, 4, 3);
  ASSERT_TRUE(bus.resetBus(dev).has_value());
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
  EXPECT_EQ(read(0, 0x04, 4), 0U);
}

TEST_F(RegistersBarTest, MsixTableInARegistersBarLatchesAndResetsMasked) {
  const uint64_t entry1 = 0x8000 + kPciMsixEntrySize;
  EXPECT_EQ(read(0, entry1 + 12, 4), 1U);  // vector control: masked
  write(0, entry1, 8, 0xfee0'0000);
  write(0, entry1 + 8, 4, 0x41);
  write(0, entry1 + 12, 4, 0);
  EXPECT_EQ(read(0, entry1, 8), 0xfee0'0000U);
  EXPECT_EQ(read(0, entry1 + 8, 4), 0x41U);
  EXPECT_EQ(read(0, entry1 + 12, 4), 0U);
  EXPECT_EQ(read(0, 0x8000 + 2 * kPciMsixEntrySize, 8), 0U);  // the PBA: nothing pending
  ASSERT_TRUE(dev.flr().has_value());
  EXPECT_EQ(read(0, entry1 + 12, 4), 1U);
  EXPECT_EQ(read(0, entry1, 8), 0U);
}

TEST_F(RegistersBarTest, DecodeOffStillReadsAllOnesAndRecordsTheViolation) {
  cfgWrite(dev, kPciCommand, 2, 0);
  EXPECT_EQ(read(0, 0x00, 4), 0xffff'ffffU);
  EXPECT_EQ(host.barRegion(dev, 0)->decodeViolationCount(), 1U);
}

}  // namespace
}  // namespace vfiomm
