#include "pci/pci_device.h"

#include <gtest/gtest.h>

#include <latch>
#include <map>
#include <thread>

#include "base/byte_units.h"
#include "bound_context.h"
#include "pci/pci_regs.h"
#include "pci/standard_device.h"
#include "pci_test_support.h"

namespace vfiomm {
namespace {

// Standard device D, not placed by a host: the tests assign what they need.
PciDeviceConfig standardConfig() { return standardDeviceConfig(1); }

PciDeviceConfig oneBar(BarSpec spec) {
  PciDeviceConfig c;
  c.bars[0] = spec;
  return c;
}

uint32_t pmcsr(const PciDevice& dev) { return *dev.pmCapOffset() + kPciPmCtrl; }
uint32_t devctl(const PciDevice& dev) { return *dev.pcieCapOffset() + kPciExpDevctl; }

// --- BAR sizing ----------------------------------------------------------------

TEST(PciDevice, MEM_06_Sizing32BitBarReadsTheSizeMaskAndRestoreWorks) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  dev.assignResource(0, kStandardBar0Start);
  const uint32_t reg = pciBaseAddress(0);
  EXPECT_EQ(cfgRead(dev, reg, 4), 0xF000'0000U);

  cfgWrite(dev, reg, 4, 0xffff'ffff);
  EXPECT_EQ(cfgRead(dev, reg, 4), 0xffff'0000U);  // 64 KiB, non-prefetchable 32-bit memory
  cfgWrite(dev, reg, 4, 0xF000'0000);
  EXPECT_EQ(cfgRead(dev, reg, 4), 0xF000'0000U);
  // The register is hardware; the kernel's resource does not follow it.
  EXPECT_EQ(dev.barStart(0), kStandardBar0Start);
}

TEST(PciDevice, Sizing64BitPairReadsTheMaskAcrossBothRegisters) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  dev.assignResource(2, kStandardBar2Start);
  const uint32_t lo = pciBaseAddress(2);
  const uint32_t hi = pciBaseAddress(3);
  const uint32_t type = kPciBaseAddressMemType64 | kPciBaseAddressMemPrefetch;
  EXPECT_EQ(cfgRead(dev, lo, 4), type);
  EXPECT_EQ(cfgRead(dev, hi, 4), 0x40U);

  cfgWrite(dev, lo, 4, 0xffff'ffff);
  cfgWrite(dev, hi, 4, 0xffff'ffff);
  const uint64_t mask = (uint64_t{cfgRead(dev, hi, 4)} << 32) | cfgRead(dev, lo, 4);
  EXPECT_EQ(mask & ~uint64_t{0xf}, ~(kStandardBar2Len - 1));  // 2 GiB
  EXPECT_EQ(mask & 0xf, type);

  cfgWrite(dev, lo, 4, 0);
  cfgWrite(dev, hi, 4, 0x40);
  EXPECT_EQ(cfgRead(dev, lo, 4), type);
  EXPECT_EQ(cfgRead(dev, hi, 4), 0x40U);
  EXPECT_TRUE(dev.barIs64(2));
  EXPECT_EQ(dev.barLen(3), 0U);  // the upper half is no BAR of its own
}

TEST(PciDevice, Sizing128GiBBarLeavesNoAddressBitsInTheLowRegister) {
  testing::BoundContext bound;
  PciDevice dev(oneBar({128 * kGiB, BarKind::kMem64, true}));
  cfgWrite(dev, pciBaseAddress(0), 4, 0xffff'ffff);
  cfgWrite(dev, pciBaseAddress(1), 4, 0xffff'ffff);
  EXPECT_EQ(cfgRead(dev, pciBaseAddress(0), 4),
            kPciBaseAddressMemType64 | kPciBaseAddressMemPrefetch);
  EXPECT_EQ(cfgRead(dev, pciBaseAddress(1), 4), 0xffff'ffe0U);
}

TEST(PciDevice, SizingIoBarKeepsItsSpaceBit) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  dev.assignResource(4, 0x1000);
  const uint32_t reg = pciBaseAddress(4);
  EXPECT_EQ(cfgRead(dev, reg, 4), 0x1001U);
  cfgWrite(dev, reg, 4, 0xffff'ffff);
  EXPECT_EQ(cfgRead(dev, reg, 4), 0xffff'ffe1U);  // 32 ports
  cfgWrite(dev, reg, 4, 0x1000);
  EXPECT_EQ(cfgRead(dev, reg, 4), 0x1001U);
  EXPECT_EQ(dev.barStart(4), 0x1000U);
}

TEST(PciDevice, SizingRomBarAndItsEnableBit) {
  testing::BoundContext bound;
  PciDeviceConfig c = standardConfig();
  c.romSize = 64 * 1024;
  PciDevice dev(c);
  dev.assignResource(kPciRomResource, 0xE000'0000);
  EXPECT_EQ(cfgRead(dev, kPciRomAddress, 4), 0xE000'0000U);  // assigned, not enabled

  cfgWrite(dev, kPciRomAddress, 4, ~kPciRomAddressEnable);  // how Linux sizes a ROM
  EXPECT_EQ(cfgRead(dev, kPciRomAddress, 4), 0xffff'0000U);
  cfgWrite(dev, kPciRomAddress, 4, 0xE000'0000 | kPciRomAddressEnable);
  EXPECT_EQ(cfgRead(dev, kPciRomAddress, 4), 0xE000'0001U);

  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
  EXPECT_TRUE(dev.romDecodeEnabled());
  cfgWrite(dev, kPciRomAddress, 4, 0xE000'0000);
  EXPECT_FALSE(dev.romDecodeEnabled());
  EXPECT_TRUE(dev.memoryDecodeEnabled());
}

TEST(PciDevice, UnimplementedBarReadsZeroAfterAllOnes) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  cfgWrite(dev, pciBaseAddress(5), 4, 0xffff'ffff);
  EXPECT_EQ(cfgRead(dev, pciBaseAddress(5), 4), 0U);
  EXPECT_EQ(dev.barLen(5), 0U);
}

// --- config space ----------------------------------------------------------------

TEST(PciDevice, CapabilityListWalkFindsPmMsixAndPcie) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  EXPECT_NE(cfgRead(dev, kPciStatus, 2) & kPciStatusCapList, 0U);

  std::map<uint32_t, uint32_t> found;  // id -> offset
  uint32_t pos = cfgRead(dev, kPciCapabilityList, 1);
  for (int hops = 0; pos != 0 && hops < 48; ++hops) {
    found[cfgRead(dev, pos + kPciCapListId, 1)] = pos;
    pos = cfgRead(dev, pos + kPciCapListNext, 1);
  }
  EXPECT_EQ(pos, 0U) << "the list ends";
  ASSERT_EQ(found.size(), 3U);
  EXPECT_EQ(found[kPciCapIdPm], uint32_t{*dev.pmCapOffset()});
  EXPECT_EQ(found[kPciCapIdMsix], uint32_t{*dev.msixCapOffset()});
  EXPECT_EQ(found[kPciCapIdExp], uint32_t{*dev.pcieCapOffset()});

  const uint32_t msix = *dev.msixCapOffset();
  EXPECT_EQ(cfgRead(dev, msix + kPciMsixFlags, 2) & kPciMsixFlagsQsize, 15U);
  const uint32_t tableReg = cfgRead(dev, msix + kPciMsixTable, 4);
  EXPECT_EQ(tableReg & kPciMsixTableOffset, 0x2000U);
  EXPECT_EQ(tableReg & kPciMsixTableBir, 0U);
  const uint32_t pbaReg = cfgRead(dev, msix + kPciMsixPba, 4);
  EXPECT_EQ(pbaReg & kPciMsixTableOffset, 0x2000U + 16 * kPciMsixEntrySize) << "after the table";
  EXPECT_EQ(pbaReg & kPciMsixTableBir, 0U);
  EXPECT_NE(cfgRead(dev, *dev.pcieCapOffset() + kPciExpDevcap, 4) & kPciExpDevcapFlr, 0U);
  EXPECT_EQ(dev.configSize(), kPciCfgSpaceExpSize);

  const std::optional<MsixTable> table = dev.msixTable();
  ASSERT_TRUE(table.has_value());
  EXPECT_EQ(table->bar, 0U);
  EXPECT_EQ(table->offset, 0x2000U);
  EXPECT_EQ(table->size, 256U);
}

TEST(PciDevice, WithoutCapabilitiesThereIsNoListAndConfigSpaceIs256Bytes) {
  testing::BoundContext bound;
  PciDevice dev(oneBar({4096, BarKind::kMem32, false}));
  EXPECT_EQ(cfgRead(dev, kPciStatus, 2) & kPciStatusCapList, 0U);
  EXPECT_EQ(cfgRead(dev, kPciCapabilityList, 1), 0U);
  EXPECT_FALSE(dev.pmCapOffset().has_value());
  EXPECT_FALSE(dev.pcieCapOffset().has_value());
  EXPECT_FALSE(dev.msixCapOffset().has_value());
  EXPECT_EQ(dev.configSize(), kPciCfgSpaceSize);
  EXPECT_EQ(dev.configRead(kPciCfgSpaceSize, 1).error(), Errno::kEFAULT);
}

TEST(PciDevice, ConfigAccessesAreNaturallyAligned1To4BytesInside) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  EXPECT_EQ(dev.configRead(0, 3).error(), Errno::kEINVAL);
  EXPECT_EQ(dev.configRead(0, 8).error(), Errno::kEINVAL);
  EXPECT_EQ(dev.configRead(1, 2).error(), Errno::kEFAULT);
  EXPECT_EQ(dev.configRead(2, 4).error(), Errno::kEFAULT);
  EXPECT_EQ(dev.configRead(kPciCfgSpaceExpSize, 1).error(), Errno::kEFAULT);
  EXPECT_EQ(dev.configWrite(kPciCommand + 1, 2, 0).error(), Errno::kEFAULT);
  EXPECT_TRUE(dev.configRead(kPciCfgSpaceExpSize - 4, 4).has_value());
  EXPECT_EQ(cfgRead(dev, kPciVendorId, 4),
            (uint32_t{dev.config().deviceId} << 16) | dev.config().vendorId);
}

TEST(PciDevice, CommandMemoryGatesMemoryDecode) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  EXPECT_FALSE(dev.memoryDecodeEnabled()) << "power-on COMMAND is 0";
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory | kPciCommandMaster);
  EXPECT_TRUE(dev.memoryDecodeEnabled());
  // A write of COMMAND's high byte leaves MEM alone.
  cfgWrite(dev, kPciCommand + 1, 1, kPciCommandIntxDisable >> 8);
  EXPECT_TRUE(dev.memoryDecodeEnabled());
  EXPECT_EQ(cfgRead(dev, kPciCommand, 2),
            uint32_t{kPciCommandMemory | kPciCommandMaster | kPciCommandIntxDisable});
  cfgWrite(dev, kPciCommand, 2, kPciCommandMaster);
  EXPECT_FALSE(dev.memoryDecodeEnabled());
}

TEST(PciDevice, FAULT_11_AVfDecodesWithCommandMemoryHardwiredZero) {
  testing::BoundContext bound;
  PciDeviceConfig c = oneBar({64 * 1024, BarKind::kMem32, false});
  c.noCommandMemory = true;
  c.pm = PmCapSpec{};
  PciDevice dev(c);
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
  EXPECT_EQ(cfgRead(dev, kPciCommand, 2) & kPciCommandMemory, 0U);
  EXPECT_TRUE(dev.memoryDecodeEnabled());
  cfgWrite(dev, pmcsr(dev), 2, 3);
  EXPECT_FALSE(dev.memoryDecodeEnabled()) << "powered down, even a VF decodes nothing";
}

// --- power states --------------------------------------------------------------------

TEST(PciDevice, FAULT_10_PmcsrD3hotStopsDecodeAndD0RestartsIt) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  dev.assignResource(0, kStandardBar0Start);
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);

  cfgWrite(dev, pmcsr(dev), 2, 3);
  EXPECT_EQ(dev.powerState(), PciPowerState::kD3hot);
  EXPECT_EQ(cfgRead(dev, pmcsr(dev), 2) & kPciPmCtrlStateMask, 3U);
  EXPECT_FALSE(dev.memoryDecodeEnabled());
  EXPECT_NE(cfgRead(dev, kPciCommand, 2) & kPciCommandMemory, 0U) << "COMMAND is kept";

  cfgWrite(dev, pmcsr(dev), 2, 0);  // NoSoftRst: the configuration survives
  EXPECT_EQ(dev.powerState(), PciPowerState::kD0);
  EXPECT_TRUE(dev.memoryDecodeEnabled());
  EXPECT_EQ(cfgRead(dev, pciBaseAddress(0), 4), 0xF000'0000U);
}

TEST(PciDevice, PmcsrWritesOfUnsupportedD1AndD2AreDiscarded) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  cfgWrite(dev, pmcsr(dev), 2, 1);
  EXPECT_EQ(dev.powerState(), PciPowerState::kD0);
  cfgWrite(dev, pmcsr(dev), 2, 3);
  cfgWrite(dev, pmcsr(dev), 2, 2);
  EXPECT_EQ(dev.powerState(), PciPowerState::kD3hot);
  EXPECT_EQ(cfgRead(dev, pmcsr(dev), 2) & kPciPmCtrlStateMask, 3U);
}

TEST(PciDevice, D3hotToD0WithoutNoSoftResetLosesTheConfiguration) {
  testing::BoundContext bound;
  PciDeviceConfig c = standardConfig();
  c.pm = PmCapSpec{.noSoftReset = false};
  PciDevice dev(c);
  dev.assignResource(0, kStandardBar0Start);
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
  EXPECT_EQ(cfgRead(dev, pmcsr(dev), 2) & kPciPmCtrlNoSoftReset, 0U);

  cfgWrite(dev, pmcsr(dev), 2, 3);
  cfgWrite(dev, pmcsr(dev), 2, 0);
  EXPECT_EQ(dev.powerState(), PciPowerState::kD0);
  EXPECT_EQ(cfgRead(dev, kPciCommand, 2), 0U);
  EXPECT_EQ(cfgRead(dev, pciBaseAddress(0), 4), 0U);
  EXPECT_FALSE(dev.memoryDecodeEnabled());
  EXPECT_EQ(dev.barStart(0), kStandardBar0Start) << "the resource is the kernel's to restore";
}

TEST(PciDevice, SetPowerStateRefusesUnsupportedAndShallowerStates) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  // D1 is not in PMC: -EIO; the function stays in D0.
  EXPECT_EQ(dev.setPowerState(PciPowerState::kD1).error(), Errno::kEIO);
  EXPECT_EQ(dev.powerState(), PciPowerState::kD0);
  EXPECT_TRUE(dev.setPowerState(PciPowerState::kD3hot));
  EXPECT_EQ(dev.powerState(), PciPowerState::kD3hot);
  // From D3hot only D0: a shallower low-power state is -EINVAL.
  EXPECT_EQ(dev.setPowerState(PciPowerState::kD2).error(), Errno::kEINVAL);
  EXPECT_EQ(dev.powerState(), PciPowerState::kD3hot);
  EXPECT_TRUE(dev.setPowerState(PciPowerState::kD3hot));  // already there
  EXPECT_TRUE(dev.setPowerState(PciPowerState::kD0));
  EXPECT_EQ(cfgRead(dev, pmcsr(dev), 2) & kPciPmCtrlStateMask, 0U);

  PciDeviceConfig c = standardConfig();
  c.pm.reset();
  PciDevice noPm(c);
  EXPECT_EQ(noPm.setPowerState(PciPowerState::kD3hot).error(), Errno::kEIO);
  EXPECT_TRUE(noPm.setPowerState(PciPowerState::kD0));
}

TEST(PciDevice, SetPowerStateD0AfterANoSoftRstClearD3hotPutsOnlyTheBarsBack) {
  testing::BoundContext bound;
  PciDeviceConfig c = standardConfig();
  c.pm = PmCapSpec{.noSoftReset = false};
  PciDevice dev(c);
  dev.assignResource(0, kStandardBar0Start);
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
  const PciSavedState saved = dev.saveState();
  ASSERT_TRUE(dev.setPowerState(PciPowerState::kD3hot));
  ASSERT_TRUE(dev.setPowerState(PciPowerState::kD0));
  EXPECT_EQ(cfgRead(dev, pciBaseAddress(0), 4), kStandardBar0Start);  // pci_restore_bars
  EXPECT_EQ(cfgRead(dev, kPciCommand, 2), 0U);                        // not restored
  EXPECT_FALSE(dev.memoryDecodeEnabled());
  // The driver's saved state brings the rest back; the power state stays D0.
  dev.restoreState(saved);
  EXPECT_EQ(cfgRead(dev, kPciCommand, 2), kPciCommandMemory);
  EXPECT_EQ(dev.powerState(), PciPowerState::kD0);
  EXPECT_TRUE(dev.memoryDecodeEnabled());
}

// --- resets -----------------------------------------------------------------------------

TEST(PciDevice, RESET_03_DevctlBcrFlrResetsAndRestoresAndReadsBackClear) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  dev.assignResource(0, kStandardBar0Start);
  const uint32_t command = kPciCommandMemory | kPciCommandMaster;
  cfgWrite(dev, kPciCommand, 2, command);
  const uint32_t msixFlags = *dev.msixCapOffset() + kPciMsixFlags;
  cfgWrite(dev, msixFlags, 2, kPciMsixFlagsEnable);
  const uint32_t before = cfgRead(dev, devctl(dev), 2);

  bool sawDecodeOff = false;
  uint32_t commandDuringReset = ~0U;
  SchedPointAction during("pci.flr", [&] {
    sawDecodeOff = dev.inReset() && !dev.memoryDecodeEnabled();
    commandDuringReset = cfgRead(dev, kPciCommand, 2);
  });
  const uint64_t flrs = counter("pci.flr");
  cfgWrite(dev, devctl(dev), 2, before | kPciExpDevctlBcrFlr);

  EXPECT_EQ(during.runs, 1);
  EXPECT_TRUE(sawDecodeOff);
  EXPECT_EQ(commandDuringReset, uint32_t{kPciCommandIntxDisable});
  EXPECT_EQ(counter("pci.flr"), flrs + 1);
  EXPECT_EQ(cfgRead(dev, devctl(dev), 2), before) << "BCR_FLR reads back clear";
  EXPECT_EQ(cfgRead(dev, kPciCommand, 2), command);
  EXPECT_EQ(cfgRead(dev, pciBaseAddress(0), 4), 0xF000'0000U);
  EXPECT_NE(cfgRead(dev, msixFlags, 2) & kPciMsixFlagsEnable, 0U);
  EXPECT_TRUE(dev.memoryDecodeEnabled());
  EXPECT_FALSE(dev.inReset());
}

TEST(PciDevice, RESET_03_DevctlBcrFlrWithoutDevcapFlrResetsNothing) {
  testing::BoundContext bound;
  PciDeviceConfig c = standardConfig();
  c.pcie = PcieCapSpec{.flr = false};
  PciDevice dev(c);
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
  EXPECT_EQ(cfgRead(dev, *dev.pcieCapOffset() + kPciExpDevcap, 4) & kPciExpDevcapFlr, 0U);
  const uint32_t before = cfgRead(dev, devctl(dev), 2);

  SchedPointAction during("pci.flr", [] {});
  const uint64_t flrs = counter("pci.flr");
  cfgWrite(dev, devctl(dev), 2, before | kPciExpDevctlBcrFlr);
  EXPECT_EQ(during.runs, 0);
  EXPECT_EQ(counter("pci.flr"), flrs);
  EXPECT_EQ(cfgRead(dev, devctl(dev), 2), before);
  EXPECT_TRUE(dev.memoryDecodeEnabled());
  EXPECT_FALSE(dev.hasFlr());
  EXPECT_EQ(dev.flr().error(), Errno::kENOTTY);
}

TEST(PciDevice, RESET_02_TryResetFunctionIsEagainWhileTheDeviceLockIsHeldElsewhere) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
  std::latch locked(1);
  std::latch release(1);
  testing::BoundThread holder(bound.context(), [&] {
    dev.deviceLock().lock();
    locked.count_down();
    release.wait();
    dev.deviceLock().unlock();
  });
  locked.wait();
  const uint64_t flrs = counter("pci.flr");
  EXPECT_EQ(dev.tryResetFunction().error(), Errno::kEAGAIN);
  EXPECT_EQ(counter("pci.flr"), flrs);
  EXPECT_TRUE(dev.memoryDecodeEnabled());
  release.count_down();
  holder.join();

  EXPECT_TRUE(dev.tryResetFunction().has_value());
  EXPECT_EQ(counter("pci.flr"), flrs + 1);
  EXPECT_FALSE(dev.deviceLock().isLocked());
  EXPECT_TRUE(dev.memoryDecodeEnabled());
}

TEST(PciDevice, RESET_01_ResetFromD3hotLeavesTheFunctionInD0AsConfigured) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  dev.assignResource(0, kStandardBar0Start);
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
  cfgWrite(dev, pmcsr(dev), 2, 3);
  ASSERT_TRUE(dev.resetFunctionAvailable());
  EXPECT_TRUE(dev.tryResetFunction().has_value());
  EXPECT_EQ(dev.powerState(), PciPowerState::kD0);
  EXPECT_TRUE(dev.memoryDecodeEnabled());
  EXPECT_EQ(cfgRead(dev, pciBaseAddress(0), 4), 0xF000'0000U);
}

TEST(PciDevice, TryResetFunctionFallsBackToPmResetWithoutFlr) {
  testing::BoundContext bound;
  PciDeviceConfig c = standardConfig();
  c.pcie = PcieCapSpec{.flr = false};
  c.pm = PmCapSpec{.noSoftReset = false};
  PciDevice dev(c);
  dev.assignResource(0, kStandardBar0Start);
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
  ASSERT_TRUE(dev.pmResetAvailable());

  PciPowerState stateDuringReset = PciPowerState::kD0;
  SchedPointAction during("pci.pm_reset", [&] { stateDuringReset = dev.powerState(); });
  const uint64_t pmResets = counter("pci.pm_reset");
  EXPECT_TRUE(dev.tryResetFunction().has_value());
  EXPECT_EQ(during.runs, 1);
  EXPECT_EQ(stateDuringReset, PciPowerState::kD3hot);
  EXPECT_EQ(counter("pci.pm_reset"), pmResets + 1);
  // The D3hot -> D0 transition reset the function; the kernel restored it.
  EXPECT_EQ(dev.powerState(), PciPowerState::kD0);
  EXPECT_EQ(cfgRead(dev, pciBaseAddress(0), 4), 0xF000'0000U);
  EXPECT_TRUE(dev.memoryDecodeEnabled());
}

TEST(PciDevice, TryResetFunctionIsEnottyWithoutFlrOrPmReset) {
  testing::BoundContext bound;
  PciDeviceConfig c = standardConfig();
  c.pcie = PcieCapSpec{.flr = false};  // and D's PM has NoSoftRst
  PciDevice dev(c);
  EXPECT_FALSE(dev.resetFunctionAvailable());
  EXPECT_EQ(dev.tryResetFunction().error(), Errno::kENOTTY);
  EXPECT_FALSE(dev.deviceLock().isLocked());
}

// --- I/O BARs ------------------------------------------------------------------------------

TEST(PciDevice, MEM_04_IoBarAccessesNeedIoDecodeNotMemory) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  dev.assignResource(4, 0x1000);
  const uint64_t aborts = counter("pci.io.master_abort");
  EXPECT_EQ(dev.ioRead(4, 0, 4).value(), 0xffff'ffffU);
  EXPECT_TRUE(dev.ioWrite(4, 4, 4, 0x1234'5678).has_value());
  EXPECT_EQ(counter("pci.io.master_abort"), aborts + 2);

  cfgWrite(dev, kPciCommand, 2, kPciCommandIo);  // MEM stays 0
  EXPECT_EQ(dev.ioRead(4, 4, 4).value(), 0U) << "the write with decode off was dropped";
  EXPECT_TRUE(dev.ioWrite(4, 4, 4, 0x1234'5678).has_value());
  EXPECT_EQ(dev.ioRead(4, 4, 4).value(), 0x1234'5678U);
  EXPECT_EQ(dev.ioRead(4, 6, 2).value(), 0x1234U);
  EXPECT_EQ(dev.ioRead(4, 7, 1).value(), 0x12U);
  EXPECT_EQ(counter("pci.io.master_abort"), aborts + 2);
}

TEST(PciDevice, IoAccessesOutsideTheBarOrMisshapenAreEinval) {
  testing::BoundContext bound;
  PciDevice dev(standardConfig());
  EXPECT_EQ(dev.ioRead(4, 32, 1).error(), Errno::kEINVAL);
  EXPECT_EQ(dev.ioRead(4, 30, 4).error(), Errno::kEINVAL);
  EXPECT_EQ(dev.ioRead(4, 1, 2).error(), Errno::kEINVAL);
  EXPECT_EQ(dev.ioRead(4, 0, 8).error(), Errno::kEINVAL);
  EXPECT_EQ(dev.ioRead(0, 0, 4).error(), Errno::kEINVAL) << "BAR0 is memory";
  EXPECT_EQ(dev.ioWrite(5, 0, 4, 0).error(), Errno::kEINVAL) << "BAR5 is unimplemented";
  EXPECT_EQ(dev.ioWrite(6, 0, 4, 0).error(), Errno::kEINVAL);
}

}  // namespace
}  // namespace vfiomm
