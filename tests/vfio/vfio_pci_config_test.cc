// The config region as user space sees it (vfio-uapi.md §8, UAPI-22 …
// UAPI-29) and the power-state restore of NoSoftRst- functions (issue 17
// finding 1): what a read returns, which writes reach the device, which
// only vfio's copy, and which are dropped.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <string>

#include "base/byte_units.h"
#include "pci/pci_bus.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

long neg(Errno e) { return -static_cast<long>(toInt(e)); }

uint64_t counter(std::string_view name) { return CounterSet::current().snapshot().get(name); }

class ConfigTest : public VfioTest {
 protected:
  // A device added to a new bus behind a bridge and opened by `proc`; it
  // becomes `dev`, its fd `fd`.
  void openOther(uint8_t busNumber, PciDeviceConfig (*tweak)(PciDeviceConfig)) {
    PciBus& bus = kernel->addBus(busNumber);
    auto d = kernel->addVfioDevice(bus, tweak(standardDeviceConfig(bus.number())));
    ASSERT_TRUE(d) << errnoName(d.error());
    dev = *d;
    fd = openGroupPath(*proc);
  }
  uint32_t deviceRead(uint32_t offset, unsigned size) {
    return dev->pdev().configRead(offset, size).value_or(0xdeadbeef);
  }
  uint32_t pmcsr() const { return *dev->pdev().pmCapOffset() + kPciPmCtrl; }
  size_t logLinesWith(const std::string& text) {
    const auto lines = kernel->machine().log().lines();
    return static_cast<size_t>(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.find(text) != std::string::npos;
    }));
  }
  uint64_t mapTouched(uint64_t len) {
    const long va = map(kBar0Offset, len);
    EXPECT_GT(va, 0);
    const auto at = static_cast<uint64_t>(va);
    for (uint64_t o = 0; o < len; o += kPageSize) EXPECT_EQ(touch(at + o).sig.signo, 0);
    return at;
  }
};

// The rules are the same in every design; one is enough for these.
using VfioPciConfig = ConfigTest;

TEST_P(VfioPciConfig, UAPI_22_CommandVirtualizesOnlyIntxDisable) {
  EXPECT_EQ(configRead(kPciCommand, 2), 0x0003U);  // IO|MEM from pci_enable_device, BME 0
  EXPECT_EQ(configWrite(kPciCommand, 0x0407, 2), 2);
  EXPECT_EQ(configRead(kPciCommand, 2), 0x0407U);
  EXPECT_EQ(deviceRead(kPciCommand, 2), 0x0007U);  // INTx disable never reaches the device
  // MEM and IO go through; the device's own value is what reads show.
  EXPECT_EQ(configWrite(kPciCommand, 0x0400, 2), 2);
  EXPECT_EQ(deviceRead(kPciCommand, 2), 0x0000U);
  EXPECT_EQ(configRead(kPciCommand, 2), 0x0400U);
  EXPECT_EQ(dev->pci().virtualCommand() & kPciCommandMemory, 0);
}

TEST_P(VfioPciConfig, UAPI_23_BarSizingThroughTheRegion) {
  const std::array<uint32_t, 7> regs = {0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30};
  const auto port = static_cast<uint32_t>(dev->pdev().barStart(4));
  const std::array<uint32_t, 7> assigned = {0xF0000000, 0xF0010000, 0x0000000C, 0x00000040,
                                            port | 1U,  0,          0};
  std::array<uint32_t, 7> device{};
  for (size_t i = 0; i < regs.size(); ++i) {
    EXPECT_EQ(configRead(regs[i], 4), assigned[i]) << std::hex << regs[i];
    device[i] = deviceRead(regs[i], 4);
  }
  for (uint32_t reg : regs) EXPECT_EQ(configWrite(reg, 0xFFFFFFFF, 4), 4);
  const std::array<uint32_t, 7> sized = {0xFFFF0000, 0xFFFFFF00, 0x8000000C, 0xFFFFFFFF,
                                         0xFFFFFFE1, 0,          0};
  for (size_t i = 0; i < regs.size(); ++i) {
    EXPECT_EQ(configRead(regs[i], 4), sized[i]) << std::hex << regs[i];
    EXPECT_EQ(deviceRead(regs[i], 4), device[i]) << "hardware BAR touched at " << regs[i];
  }
  // A 2-byte read of the upper half of a sized BAR is the same bits.
  EXPECT_EQ(configRead(0x12, 2), 0xFFFFU);
}

PciDeviceConfig withRom(PciDeviceConfig c) {
  c.romSize = 64 * kKiB;
  return c;
}

TEST_P(VfioPciConfig, UAPI_24_RomBarSizingKeepsTheEnableBit) {
  openOther(0x20, withRom);
  const uint32_t device = deviceRead(kPciRomAddress, 4);
  EXPECT_EQ(configWrite(kPciRomAddress, 0xFFFFF800, 4), 4);
  EXPECT_EQ(configRead(kPciRomAddress, 4), 0xFFFF0000U);
  EXPECT_EQ(configWrite(kPciRomAddress, 0xFFFFFFFF, 4), 4);
  EXPECT_EQ(configRead(kPciRomAddress, 4), 0xFFFF0001U);
  EXPECT_EQ(deviceRead(kPciRomAddress, 4), device);
}

TEST_P(VfioPciConfig, UAPI_25_ReadOnlyFieldsDropWritesAndInterruptLineIsVirtual) {
  struct Field {
    uint32_t offset;
    unsigned size;
  };
  for (const Field f :
       {Field{kPciVendorId, 2}, Field{kPciClassRevision + 1, 1}, Field{kPciStatus, 2},
        Field{kPciHeaderType, 1}, Field{kPciInterruptPin, 1}, Field{kPciCapabilityList, 1}}) {
    const uint32_t before = configRead(f.offset, f.size);
    const uint32_t device = deviceRead(f.offset, f.size);
    EXPECT_EQ(configWrite(f.offset, ~before, f.size), static_cast<long>(f.size));
    EXPECT_EQ(configRead(f.offset, f.size), before) << std::hex << f.offset;
    EXPECT_EQ(deviceRead(f.offset, f.size), device) << std::hex << f.offset;
  }
  const uint32_t line = deviceRead(kPciInterruptLine, 1);
  EXPECT_EQ(configWrite(kPciInterruptLine, 0x0B, 1), 1);
  EXPECT_EQ(configRead(kPciInterruptLine, 1), 0x0BU);
  EXPECT_EQ(deviceRead(kPciInterruptLine, 1), line);
  EXPECT_EQ(configWrite(kPciCacheLineSize, 0x10, 1), 1);
  EXPECT_EQ(deviceRead(kPciCacheLineSize, 1), 0x10U);
  EXPECT_EQ(configRead(kPciInterruptPin, 1), 1U);
}

PciDeviceConfig asVf(PciDeviceConfig c) {
  c.bars[4].reset();  // a VF has no I/O BAR
  c.noCommandMemory = true;
  return c;
}

TEST_P(VfioPciConfig, UAPI_25_VfShowsPinZeroAndAVirtualMemoryBit) {
  openOther(0x20, asVf);
  EXPECT_EQ(deviceRead(kPciInterruptPin, 1), 1U);
  EXPECT_EQ(configRead(kPciInterruptPin, 1), 0U);
  EXPECT_EQ(deviceRead(kPciCommand, 2) & kPciCommandMemory, 0U);  // hardwired 0 on a VF
  EXPECT_NE(configRead(kPciCommand, 2) & kPciCommandMemory, 0U);
  EXPECT_EQ(configWrite(kPciCommand, 0, 2), 2);
  EXPECT_EQ(configRead(kPciCommand, 2) & kPciCommandMemory, 0U);
}

TEST_P(VfioPciConfig, UAPI_26_PmcsrGoesThroughSetPowerState) {
  const uint64_t va = mapTouched(64 * kKiB);
  const uint32_t pmc = *dev->pdev().pmCapOffset() + kPciPmPmc;
  EXPECT_EQ(configRead(pmc, 2) & kPciPmCapPmeMask, 0U);

  // D1, which D does not support: refused, no zap, the count returned.
  const uint64_t writes = dev->pci().memoryLockWriteCount();
  EXPECT_EQ(configWrite(pmcsr(), 1, 2), 2);
  EXPECT_EQ(configRead(pmcsr(), 2) & kPciPmCtrlStateMask, 0U);
  EXPECT_EQ(dev->pdev().powerState(), PciPowerState::kD0);
  EXPECT_EQ(dev->pci().memoryLockWriteCount() - writes, 1U);
  EXPECT_EQ(leaves(va, 64 * kKiB).total(), 16U);  // not zapped

  // PME_En is virtual and not writable: it reads 0.
  EXPECT_EQ(configWrite(pmcsr(), kPciPmCtrlPmeEnable, 2), 2);
  EXPECT_EQ(configRead(pmcsr(), 2) & kPciPmCtrlPmeEnable, 0U);

  // D3hot: zapped, the state read from the device.
  EXPECT_EQ(configWrite(pmcsr(), 3, 2), 2);
  EXPECT_EQ(dev->pdev().powerState(), PciPowerState::kD3hot);
  EXPECT_EQ(configRead(pmcsr(), 2) & kPciPmCtrlStateMask, 3U);
  EXPECT_EQ(leaves(va, 64 * kKiB).total(), 0U);
  EXPECT_EQ(touch(va).sig.signo, SigInfo::kSigbus);
  // NoSoftRst is the device's bit, shown as is.
  EXPECT_NE(configRead(pmcsr(), 2) & kPciPmCtrlNoSoftReset, 0U);
  EXPECT_EQ(configWrite(pmcsr(), 0, 2), 2);
  EXPECT_EQ(touch(va).sig.signo, 0);
}

PciDeviceConfig noSoftResetClear(PciDeviceConfig c) {
  c.pm->noSoftReset = false;
  return c;
}

TEST_P(VfioPciConfig, UAPI_27_D3hotToD0RestoresTheConfigOfANoSoftRstClearFunction) {
  // NoSoftRst set (D): the function keeps its state; nothing to restore.
  uint64_t restores = counter("pci.restore_state");
  ASSERT_EQ(configWrite(pmcsr(), 3, 2), 2);
  ASSERT_EQ(configWrite(pmcsr(), 0, 2), 2);
  EXPECT_EQ(counter("pci.restore_state"), restores);

  openOther(0x20, noSoftResetClear);
  const uint32_t bar0 = deviceRead(kPciBaseAddress0, 4);
  const uint32_t bar2 = deviceRead(kPciBaseAddress0 + 8, 4);
  const uint32_t cmd = deviceRead(kPciCommand, 2);
  ASSERT_NE(bar0, 0U);
  ASSERT_NE(cmd & kPciCommandMemory, 0U);
  restores = counter("pci.restore_state");
  ASSERT_EQ(configWrite(pmcsr(), 3, 2), 2);
  ASSERT_EQ(dev->pdev().powerState(), PciPowerState::kD3hot);
  ASSERT_EQ(configWrite(pmcsr(), 0, 2), 2);
  EXPECT_EQ(dev->pdev().powerState(), PciPowerState::kD0);
  EXPECT_EQ(counter("pci.restore_state") - restores, 1U);
  EXPECT_EQ(deviceRead(kPciCommand, 2), cmd);
  EXPECT_EQ(deviceRead(kPciBaseAddress0, 4), bar0);
  EXPECT_EQ(deviceRead(kPciBaseAddress0 + 8, 4), bar2);
  EXPECT_TRUE(dev->pdev().memoryDecodeEnabled());
}

TEST_P(VfioPciConfig, UAPI_28_MsixReadOnlyOutOfRangeAndUnassignedGaps) {
  const uint32_t flags = *dev->pdev().msixCapOffset() + kPciMsixFlags;
  const uint32_t before = configRead(flags, 2);
  const uint32_t device = deviceRead(flags, 2);
  EXPECT_EQ(configWrite(flags, before | kPciMsixFlagsEnable, 2), 2);
  EXPECT_EQ(configRead(flags, 2), before);
  EXPECT_EQ(deviceRead(flags, 2), device);

  std::array<uint8_t, 4> buf;
  buf.fill(0xA5);
  EXPECT_EQ(proc->pread(fd, buf.data(), 4, kConfigOffset + 0xFFE), neg(Errno::kEFAULT));
  EXPECT_EQ(buf, (std::array<uint8_t, 4>{0xA5, 0xA5, 0xA5, 0xA5}));
  EXPECT_EQ(proc->pwrite(fd, buf.data(), 4, kConfigOffset + 0xFFE), neg(Errno::kEFAULT));

  // 0xC0 lies past D's PCIe capability (0x60-0x9b): the device's register,
  // not a copy that keeps what was written.
  EXPECT_EQ(configWrite(0xC0, 0x12345678, 4), 4);
  EXPECT_EQ(configRead(0xC0, 4), deviceRead(0xC0, 4));
  EXPECT_NE(configRead(0xC0, 4), 0x12345678U);
}

TEST_P(VfioPciConfig, UAPI_29_CommandWriteRestoresBarsClobberedBehindVfiosBack) {
  const std::string line =
      "vfio-pci " + dev->name() + ": vfio_bar_restore: reset recovery - restoring BARs";
  EXPECT_EQ(configWrite(kPciCommand, 0x0003, 2), 2);
  EXPECT_EQ(logLinesWith(line), 0U);

  ASSERT_TRUE(dev->pdev().configWrite(kPciBaseAddress0, 4, 0));
  ASSERT_TRUE(dev->pdev().configWrite(kPciBaseAddress0 + 4, 4, 0));
  EXPECT_EQ(configWrite(kPciCommand, 0x0003, 2), 2);
  EXPECT_EQ(deviceRead(kPciBaseAddress0, 4), kStandardBar0Start);
  EXPECT_EQ(deviceRead(kPciBaseAddress0 + 4, 4), kStandardBar1Start);
  EXPECT_EQ(kernel->machine().log().lines(), std::vector<std::string>{line});
}

PciDeviceConfig withMsi(PciDeviceConfig c) {
  c.msi = MsiSpec{.multipleMessageCapable = 3, .addr64 = true};
  return c;
}

TEST_P(VfioPciConfig, Section8_MsiFlagsAddressAndDataAreVirtual) {
  openOther(0x20, withMsi);
  const uint32_t cap = *dev->pdev().findCapability(kPciCapIdMsi);
  const uint32_t flags = cap + kPciMsiFlags;
  EXPECT_EQ(deviceRead(flags, 2) & kPciMsiFlagsQmask, 3U << 1);
  // Multiple Message Capable shows what SET_IRQS enabled: nothing yet.
  EXPECT_EQ(configRead(flags, 2) & kPciMsiFlagsQmask, 0U);
  EXPECT_NE(configRead(flags, 2) & kPciMsiFlags64Bit, 0U);
  // Enable is SET_IRQS's: neither vconfig nor the device take it.
  EXPECT_EQ(configWrite(flags, kPciMsiFlagsEnable | kPciMsiFlagsQsize, 2), 2);
  EXPECT_EQ(configRead(flags, 2) & (kPciMsiFlagsEnable | kPciMsiFlagsQsize), 0U);
  EXPECT_EQ(deviceRead(flags, 2) & (kPciMsiFlagsEnable | kPciMsiFlagsQsize), 0U);
  // Address and data are vfio's copy only.
  EXPECT_EQ(configWrite(cap + kPciMsiAddressLo, 0xFEE00000, 4), 4);
  EXPECT_EQ(configRead(cap + kPciMsiAddressLo, 4), 0xFEE00000U);
  EXPECT_EQ(deviceRead(cap + kPciMsiAddressLo, 4), 0U);
  EXPECT_EQ(configWrite(cap + kPciMsiData64, 0x4021, 2), 2);
  EXPECT_EQ(configRead(cap + kPciMsiData64, 2), 0x4021U);
}

TEST_P(VfioPciConfig, Section8_DevctlMaxPayloadIsVirtualAndMrrsGoesThroughAboveTheFloor) {
  const uint32_t devctl = *dev->pdev().pcieCapOffset() + kPciExpDevctl;
  const uint32_t device = deviceRead(devctl, 2);
  ASSERT_EQ(device & kPciExpDevctlPayload, 0U);  // 128-byte MPS
  // Max Payload 256: vfio's copy only.
  EXPECT_EQ(configWrite(devctl, device | 0x0020, 2), 2);
  EXPECT_EQ(configRead(devctl, 2) & kPciExpDevctlPayload, 0x0020U);
  EXPECT_EQ(deviceRead(devctl, 2) & kPciExpDevctlPayload, 0U);
  // MRRS 4096 reaches the device; 128 too (the device's MPS is the floor).
  const uint32_t mps256 = device | 0x0020;
  EXPECT_EQ(configWrite(devctl, (mps256 & ~uint32_t{kPciExpDevctlReadrq}) | 0x5000, 2), 2);
  EXPECT_EQ(deviceRead(devctl, 2) & kPciExpDevctlReadrq, 0x5000U);
  EXPECT_EQ(configWrite(devctl, mps256 & ~uint32_t{kPciExpDevctlReadrq}, 2), 2);
  EXPECT_EQ(deviceRead(devctl, 2) & kPciExpDevctlReadrq, 0U);
  EXPECT_EQ(configRead(devctl, 2) & kPciExpDevctlReadrq, 0U);
  // The rest of DEVCTL goes through.
  EXPECT_EQ(configWrite(devctl, mps256 & ~uint32_t{kPciExpDevctlRelaxEn}, 2), 2);
  EXPECT_EQ(deviceRead(devctl, 2) & kPciExpDevctlRelaxEn, 0U);
}

TEST_P(VfioPciConfig, Section8_OneLongReadIsTheSameAsByteReads) {
  // Pieces never straddle a capability or mix virtual and device bytes
  // wrongly: 256 bytes in one pread equal 256 one-byte preads.
  std::array<uint8_t, 256> whole{};
  ASSERT_EQ(proc->pread(fd, whole.data(), whole.size(), kConfigOffset), 256);
  for (uint32_t i = 0; i < whole.size(); ++i) EXPECT_EQ(whole[i], configRead(i, 1)) << i;
  // An unaligned 4-byte read across COMMAND/STATUS is cut, not refused.
  uint32_t v = 0;
  ASSERT_EQ(proc->pread(fd, &v, 4, kConfigOffset + 3), 4);
  EXPECT_EQ(v, configRead(3, 1) | configRead(4, 2) << 8 | configRead(6, 1) << 24);
}

INSTANTIATE_TEST_SUITE_P(OneDesign, VfioPciConfig, ::testing::Values(DesignKind::kHugeFault),
                         designParamName);

// A PCIe function without FLR or PM whose config image also has a VPD,
// an Advanced Features (TP and FLR), a PCI-X mode 2 capability, AER and
// Power Budgeting, with a small VPD EEPROM: "vfio" as the identifier
// string, then the end tag (8 bytes).
constexpr uint32_t kExpAt = 0x40;
constexpr uint32_t kVpdAt = 0x80;
constexpr uint32_t kAfAt = 0x88;
constexpr uint32_t kPcixAt = 0x90;
constexpr uint32_t kAerAt = 0x100;
constexpr uint32_t kPwrAt = 0x150;

PciDeviceConfig withOlderCapabilities(PciDeviceConfig c) {
  std::vector<uint8_t> img(kPciCfgSpaceExpSize, 0);
  auto put = [&](uint32_t at, unsigned size, uint32_t v) {
    for (unsigned i = 0; i < size; ++i) img[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  put(kPciVendorId, 2, c.vendorId);
  put(kPciDeviceId, 2, c.deviceId);
  put(kPciStatus, 2, kPciStatusCapList);
  put(kPciCapabilityList, 1, kExpAt);
  put(kExpAt, 2, kPciCapIdExp | kVpdAt << 8);
  put(kExpAt + kPciExpFlags, 2, kPciExpFlagsVers2);
  put(kVpdAt, 2, kPciCapIdVpd | kAfAt << 8);
  put(kAfAt, 2, kPciCapIdAf | kPcixAt << 8);
  put(kAfAt + 2, 1, 6);  // length
  put(kAfAt + kPciAfCap, 1, kPciAfCapTp | kPciAfCapFlr);
  put(kPcixAt, 2, kPciCapIdPcix);
  put(kPcixAt + kPciXCmd, 2, 1U << 12);  // version 1: the 24-byte mode 2 layout
  put(kAerAt, 4, kPciExtCapIdErr | 1U << 16 | kPwrAt << 20);
  put(kPwrAt, 4, kPciExtCapIdPwr | 1U << 16);
  c.configImage = img;
  c.pm.reset();
  c.msix.reset();
  c.pcie = PcieCapSpec{.flr = false};
  c.vpd = {0x82, 0x04, 0x00, 'v', 'f', 'i', 'o', 0x78};
  c.interruptPin = 0;
  return c;
}

class OlderCapabilitiesTest : public ConfigTest {
 protected:
  void SetUp() override {
    ConfigTest::SetUp();
    openOther(0x30, withOlderCapabilities);
  }
};

// vfio_vpd_config_write(): a write of the address runs the VPD transaction
// through the PCI core and flips F; the device's own VPD registers are
// never touched; a dword past the end tag fails and leaves F as written.
TEST_P(OlderCapabilitiesTest, Section8_VpdAddressAndDataAreEmulated) {
  ASSERT_EQ(configRead(kVpdAt, 2), kPciCapIdVpd | kAfAt << 8);
  EXPECT_EQ(configWrite(kVpdAt + kPciVpdAddr, 0x0000, 2), 2);
  EXPECT_EQ(configRead(kVpdAt + kPciVpdAddr, 2), kPciVpdAddrF);  // read done
  EXPECT_EQ(configRead(kVpdAt + kPciVpdData, 4), 0x76000482U);
  EXPECT_EQ(configWrite(kVpdAt + kPciVpdAddr, 0x0004, 2), 2);
  EXPECT_EQ(configRead(kVpdAt + kPciVpdData, 4), 0x786f6966U);  // "fio", end tag
  EXPECT_EQ(configWrite(kVpdAt + kPciVpdAddr, 0x0008, 2), 2);   // past the end tag
  EXPECT_EQ(configRead(kVpdAt + kPciVpdAddr, 2), 0x0008U);
  EXPECT_EQ(configRead(kVpdAt + kPciVpdData, 4), 0x786f6966U);

  EXPECT_EQ(configWrite(kVpdAt + kPciVpdData, 0x11223344, 4), 4);
  EXPECT_EQ(configWrite(kVpdAt + kPciVpdAddr, kPciVpdAddrF | 0x0004, 2), 2);
  EXPECT_EQ(configRead(kVpdAt + kPciVpdAddr, 2), 0x0004U);  // write done: F clear
  EXPECT_EQ(dev->pdev().readVpd(4).value_or(0), 0x11223344U);
  // A write of the low byte alone does not start a transaction.
  EXPECT_EQ(configWrite(kVpdAt + kPciVpdAddr, 0x00, 1), 1);
  EXPECT_EQ(configRead(kVpdAt + kPciVpdAddr, 2), 0x0000U);
  EXPECT_EQ(configRead(kVpdAt + kPciVpdData, 4), 0x11223344U);
  EXPECT_EQ(deviceRead(kVpdAt + kPciVpdAddr, 2), 0U);
  EXPECT_EQ(deviceRead(kVpdAt + kPciVpdData, 4), 0U);
}

// vfio_af_config_write(): AF FLR reads 0 and resets the function, after
// the zap, when the capability has TP and FLR; it is also the reset method
// the PCI core picks for a function without PCIe FLR.
TEST_P(OlderCapabilitiesTest, Section5_Section8_AfFlrIsVirtualAndResetsTheFunction) {
  EXPECT_EQ(dev->pdev().resetMethods().front(), PciResetMethod::kAfFlr);
  vfio_device_info info{.argsz = sizeof(vfio_device_info)};
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, &info), 0);
  EXPECT_NE(info.flags & VFIO_DEVICE_FLAGS_RESET, 0U);
  const uint64_t va = mapTouched(kPageSize);
  const uint64_t resets = dev->pdev().resetCount();
  EXPECT_EQ(configWrite(kAfAt + kPciAfCtrl, kPciAfCtrlFlr, 1), 1);
  EXPECT_EQ(configRead(kAfAt + kPciAfCtrl, 1), 0U);
  EXPECT_EQ(dev->pdev().resetCount(), resets + 1);
  EXPECT_EQ(leaves(va, kPageSize).pte, 0U) << "the reset zapped every mapping first";
  EXPECT_EQ(touch(va).sig.signo, 0);
}

// init_pci_cap_pcix_perm, init_pci_ext_cap_err_perm, _pwr_perm: these
// registers reach the device; the rest of each capability drops writes.
TEST_P(OlderCapabilitiesTest, Section8_PcixAerAndPowerBudgetWritesGoThrough) {
  EXPECT_EQ(configWrite(kPcixAt + kPciXCmd, 0x0073, 2), 2);
  EXPECT_EQ(deviceRead(kPcixAt + kPciXCmd, 2), 0x0073U);
  EXPECT_EQ(configWrite(kPcixAt + kPciXEccCsr, 0x12345678, 4), 4);
  EXPECT_EQ(deviceRead(kPcixAt + kPciXEccCsr, 4), 0x12345678U);
  EXPECT_EQ(configWrite(kPcixAt + 4, 0xffffffff, 4), 4);  // PCI-X status: read-only
  EXPECT_EQ(deviceRead(kPcixAt + 4, 4), 0U);

  EXPECT_EQ(configWrite(kAerAt + kPciErrUncorMask, 0xffffffff, 4), 4);
  EXPECT_EQ(deviceRead(kAerAt + kPciErrUncorMask, 4), 0x03fff031U);
  EXPECT_EQ(configWrite(kAerAt + kPciErrUncorSever, 0x00000010, 4), 4);
  EXPECT_EQ(deviceRead(kAerAt + kPciErrUncorSever, 4), 0x00000010U);
  EXPECT_EQ(configWrite(kAerAt + kPciErrCorMask, 0xffffffff, 4), 4);
  EXPECT_EQ(deviceRead(kAerAt + kPciErrCorMask, 4), 0x0000f1c1U);
  EXPECT_EQ(configWrite(kAerAt + kPciErrCap, 0xffffffff, 4), 4);
  EXPECT_EQ(deviceRead(kAerAt + kPciErrCap, 4), kPciErrCapEcrcGene | kPciErrCapEcrcChke);
  EXPECT_EQ(configWrite(kAerAt, 0, 4), 4);  // the header is vfio's
  EXPECT_EQ(configRead(kAerAt, 4), kPciExtCapIdErr | 1U << 16 | kPwrAt << 20);

  EXPECT_EQ(configWrite(kPwrAt + kPciPwrDataSelect, 0x05, 1), 1);
  EXPECT_EQ(deviceRead(kPwrAt + kPciPwrDataSelect, 1), 0x05U);
  EXPECT_EQ(configWrite(kPwrAt + 8, 0xff, 1), 1);  // the budgeting data itself
  EXPECT_EQ(deviceRead(kPwrAt + 8, 1), 0U);
}

INSTANTIATE_TEST_SUITE_P(OneDesign, OlderCapabilitiesTest,
                         ::testing::Values(DesignKind::kHugeFault), designParamName);

// Issue 17 finding 1: a NoSoftRst- function behind a bridge, mapped and
// touched, put in D3hot through PMCSR and brought back by PMCSR, by
// VFIO_DEVICE_RESET or by a hot reset of its dev_set. Linux saves its
// configuration on the way in and restores it on the way out; without that
// the function comes back with COMMAND 0 and BARs 0 while vfio's virtual
// COMMAND says MEM, and every touch is a decode violation (invariant 1).
enum class WayBack : uint8_t { kPmcsrD0, kDeviceReset, kHotReset };

class Finding1Test : public ConfigTest {
 protected:
  void run(WayBack way) {
    openOther(0x20, [](PciDeviceConfig c) {
      c.bars[0] = BarSpec{32 * kMiB, BarKind::kMem32, false};
      c.pm->noSoftReset = false;
      return c;
    });
    const uint64_t violations = kernel->pciHost().decodeViolationCount();
    const uint64_t va = mapTouched(32 * kMiB);
    ASSERT_EQ(proc->thread().store(va + 0x1000, 0x600dcafe).sig.signo, 0);
    const uint32_t bar0 = deviceRead(kPciBaseAddress0, 4);

    ASSERT_EQ(configWrite(pmcsr(), 3, 2), 2);
    ASSERT_EQ(dev->pdev().powerState(), PciPowerState::kD3hot);
    EXPECT_EQ(touch(va).sig.signo, SigInfo::kSigbus);
    switch (way) {
      case WayBack::kPmcsrD0: ASSERT_EQ(configWrite(pmcsr(), 0, 2), 2); break;
      case WayBack::kDeviceReset: ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_RESET, nullptr), 0); break;
      case WayBack::kHotReset: {
        uapi::HotResetArg args = uapi::hotResetArg({groupFd});
        ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, args.get()), 0);
        break;
      }
    }
    EXPECT_EQ(dev->pdev().powerState(), PciPowerState::kD0);
    // vfio's view and the device agree.
    const uint32_t vcmd = dev->pci().virtualCommand();
    EXPECT_EQ(deviceRead(kPciCommand, 2) & kPciCommandMemory, vcmd & kPciCommandMemory);
    EXPECT_NE(vcmd & kPciCommandMemory, 0U);
    EXPECT_EQ(deviceRead(kPciBaseAddress0, 4), bar0);
    EXPECT_TRUE(dev->pdev().memoryDecodeEnabled());
    // Faults work, pread works, no access reached a BAR that was not decoding.
    EXPECT_EQ(touch(va + 0x2000).sig.signo, 0);
    EXPECT_EQ(proc->thread().store(va + 0x3000, 0x1234).sig.signo, 0);
    uint32_t v = 0;
    EXPECT_EQ(proc->pread(fd, &v, 4, kBar0Offset + 0x3000), 4);
    EXPECT_EQ(v, 0x1234U);
    EXPECT_EQ(kernel->pciHost().decodeViolationCount() - violations, 0U);
  }
};

TEST_P(Finding1Test, Finding1_D3hotThenD0ThroughPmcsrRestoresConfigForNoSoftRstClear) {
  run(WayBack::kPmcsrD0);
}

TEST_P(Finding1Test, Finding1_D3hotThenDeviceResetRestoresConfigForNoSoftRstClear) {
  run(WayBack::kDeviceReset);
}

TEST_P(Finding1Test, Finding1_D3hotThenHotResetRestoresConfigForNoSoftRstClear) {
  run(WayBack::kHotReset);
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, Finding1Test, ::testing::ValuesIn(allDesigns()),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
