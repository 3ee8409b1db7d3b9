#include "pci/config_dump.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/byte_units.h"
#include "bound_context.h"
#include "pci/pci_regs.h"
#include "pci/standard_device.h"
#include "pci_test_support.h"
#include "source_dir.h"

namespace vfiomm {
namespace {

// The bytes a fresh device's config space holds, as a sysfs read gives them.
std::vector<uint8_t> bytesOf(const PciDevice& dev) {
  std::vector<uint8_t> bytes(dev.configSize());
  for (uint32_t off = 0; off < bytes.size(); off += 4) {
    const uint32_t v = cfgRead(dev, off, 4);
    for (unsigned i = 0; i < 4; ++i) bytes[off + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  return bytes;
}

std::string asString(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// `lspci -xxx` text of `bytes`.
std::string lspciText(const std::vector<uint8_t>& bytes) {
  std::string out = "01:00.0 Ethernet controller: Example\n";
  for (size_t off = 0; off < bytes.size(); off += 16) {
    out += off < 0x100 ? fmt::format("{:02x}:", off) : fmt::format("{:03x}:", off);
    for (size_t i = 0; i < 16; ++i) out += fmt::format(" {:02x}", bytes[off + i]);
    out += "\n";
  }
  return out;
}

// D's resource file: BAR0 64 KiB, BAR1 256 B, BAR2/3 2 GiB 64-bit
// prefetchable, BAR4 32 I/O ports.
const char* const kStandardResource =
    "0x00000000f0000000 0x00000000f000ffff 0x0000000000040200\n"
    "0x00000000f0010000 0x00000000f00100ff 0x0000000000040200\n"
    "0x0000004000000000 0x000000407fffffff 0x000000000014220c\n"
    "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
    "0x0000000000001000 0x000000000000101f 0x0000000000040101\n"
    "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
    "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";

std::string refusal(const std::string& dump, const std::string& resource = kStandardResource) {
  try {
    const ConfigDump d = parseConfigDump(dump, "card.txt");
    deviceConfigFromDump(d, parseResourceFile(resource, "resource"), "resource");
  } catch (const ConfigDumpError& e) {
    return e.what();
  }
  return "accepted";
}

class ConfigDumpTest : public ::testing::Test {
 protected:
  testing::BoundContext boundContext;  // first: the objects below run on it
  // Standard device D with its addresses assigned, as a host would dump it.
  void SetUp() override {
    dev.assignResource(0, kStandardBar0Start);
    dev.assignResource(1, kStandardBar1Start);
    dev.assignResource(2, kStandardBar2Start);
    dev.assignResource(4, 0x1000);
    cfgWrite(dev, kPciCommand, 2, 0x0407);
    image = bytesOf(dev);
  }
  PciDevice dev{standardDeviceConfig(1)};
  std::vector<uint8_t> image;
};

TEST_F(ConfigDumpTest, Binary4096OfStandardDeviceGivesItsConfigBack) {
  const ConfigDump d = parseConfigDump(asString(image), "config");
  EXPECT_FALSE(d.text);
  const PciDeviceConfig c =
      deviceConfigFromDump(d, parseResourceFile(kStandardResource, "resource"), "resource");
  EXPECT_EQ(c.vendorId, 0x1af4);
  EXPECT_EQ(c.deviceId, 0x10f0);
  EXPECT_EQ(c.classCode, 0x020000U);
  ASSERT_TRUE(c.bars[0] && c.bars[1] && c.bars[2] && c.bars[4]);
  EXPECT_EQ(c.bars[0]->size, 0x10000U);
  EXPECT_EQ(c.bars[0]->kind, BarKind::kMem32);
  EXPECT_EQ(c.bars[1]->size, 0x100U);
  EXPECT_EQ(c.bars[2]->size, 2ULL << 30);
  EXPECT_EQ(c.bars[2]->kind, BarKind::kMem64);
  EXPECT_TRUE(c.bars[2]->prefetchable);
  EXPECT_FALSE(c.bars[3].has_value());
  EXPECT_EQ(c.bars[4]->kind, BarKind::kIo);
  EXPECT_EQ(c.bars[4]->size, 32U);
  EXPECT_FALSE(c.bars[5].has_value());
  EXPECT_FALSE(c.romSize.has_value());
  ASSERT_TRUE(c.pm && c.pcie && c.msix);
  EXPECT_TRUE(c.pm->noSoftReset);
  EXPECT_TRUE(c.pcie->flr);
  EXPECT_EQ(c.msix->bar, 0U);
  EXPECT_EQ(c.msix->tableOffset, kStandardMsixTableOffset);
  EXPECT_EQ(c.msix->vectors, kStandardMsixVectors);
  EXPECT_EQ(c.interruptPin, 1);
  EXPECT_EQ(c.configImage, image);
}

// A device built from D's dump is D out of power-on: the same bytes and the
// same writable bits everywhere (COMMAND and the BARs back to reset).
TEST_F(ConfigDumpTest, DeviceFromImagePowersOnExactlyAsTheSyntheticOne) {
  PciDeviceConfig c = deviceConfigFromDump(parseConfigBinary(asString(image), "config"),
                                           parseResourceFile(kStandardResource, "r"), "r");
  PciDevice fromDump(c);
  PciDevice synthetic(standardDeviceConfig(1));
  EXPECT_EQ(bytesOf(fromDump), bytesOf(synthetic));
  for (uint32_t off = 0; off < synthetic.configSize(); off += 4) {
    if (off == *synthetic.pcieCapOffset() + kPciExpDevctl) continue;  // BCR_FLR would reset
    cfgWrite(fromDump, off, 4, 0xffff'ffff);
    cfgWrite(synthetic, off, 4, 0xffff'ffff);
    ASSERT_EQ(cfgRead(fromDump, off, 4), cfgRead(synthetic, off, 4)) << "offset " << off;
  }
}

TEST_F(ConfigDumpTest, Binary256AndLspciTextLoadTheSameDevice) {
  PciDeviceConfig plain = standardDeviceConfig(1);
  plain.pcie.reset();
  plain.msix.reset();
  PciDevice conventional(plain);
  const std::vector<uint8_t> bytes = bytesOf(conventional);
  ASSERT_EQ(bytes.size(), 256U);
  const ConfigDump bin = parseConfigDump(asString(bytes), "config");
  const ConfigDump text = parseConfigDump(lspciText(bytes), "lspci.txt");
  EXPECT_TRUE(text.text);
  EXPECT_EQ(bin.bytes, text.bytes);
  const PciDeviceConfig c =
      deviceConfigFromDump(text, parseResourceFile(kStandardResource, "r"), "r");
  EXPECT_TRUE(c.pm.has_value());
  EXPECT_FALSE(c.pcie.has_value());
  EXPECT_EQ(PciDevice(c).configSize(), 256U);
}

TEST_F(ConfigDumpTest, LspciDashXxxxTextWithVerboseLinesAndCommentsLoads) {
  std::string text = "# captured on host A\n" + lspciText(image);
  text.insert(text.find('\n', text.find("Example")) + 1,
              "\tSubsystem: Example\n\tFlags: fast devsel\n");
  const ConfigDump d = parseConfigDump(text, "x.txt");
  EXPECT_EQ(d.bytes, image);
  EXPECT_EQ(d.rowLine.front(), 5);  // comment, header, two detail lines
}

// --- refusals ---------------------------------------------------------------------

TEST_F(ConfigDumpTest, UnprivilegedSixtyFourByteDumpsAreRefusedWithTheReason) {
  const std::vector<uint8_t> header(image.begin(), image.begin() + 64);
  EXPECT_NE(refusal(asString(header)).find("non-root"), std::string::npos)
      << refusal(asString(header));
  const std::string text = lspciText(header);
  EXPECT_NE(refusal(text).find("as root"), std::string::npos) << refusal(text);
  const std::vector<uint8_t> odd(image.begin(), image.begin() + 300);
  EXPECT_NE(refusal(asString(odd)).find("300 bytes"), std::string::npos) << refusal(asString(odd));
}

TEST_F(ConfigDumpTest, MalformedTextRowsAreRefusedWithFileAndLine) {
  std::string skipped = lspciText(image);
  skipped.replace(skipped.find("\n20:"), 4, "\n30:");  // line 4: offset 0x30 where 0x20 belongs
  EXPECT_NE(refusal(skipped).find("card.txt:4: row at offset 0x30, expected 0x20"),
            std::string::npos)
      << refusal(skipped);

  std::string badByte = lspciText(image);
  badByte.replace(badByte.find("\n10:") + 5, 2, "zz");
  EXPECT_NE(refusal(badByte).find("card.txt:3: byte 0x10 is 'zz'"), std::string::npos)
      << refusal(badByte);

  std::string shortRow = lspciText(image);
  shortRow.replace(shortRow.find("\n10:") + 5, 3, "");
  EXPECT_NE(refusal(shortRow).find("card.txt:3: 15 bytes in the row"), std::string::npos)
      << refusal(shortRow);

  const std::string two = lspciText(image) + "02:00.0 VGA compatible controller: Other\n";
  EXPECT_NE(refusal(two).find("a second device"), std::string::npos) << refusal(two);
}

TEST_F(ConfigDumpTest, CapabilityChainErrorsNameTheByte) {
  std::vector<uint8_t> loop = image;
  // MSI-X (0x50) points back at PM (0x40).
  loop[PciDevice::kMsixCapOffset + kPciCapListNext] = PciDevice::kPmCapOffset;
  EXPECT_EQ(refusal(asString(loop)).find("card.txt: byte 0x51: capability pointer loop"), 0U)
      << refusal(asString(loop));
  // The same in text: the byte's line.
  EXPECT_NE(refusal(lspciText(loop)).find("card.txt:7: byte 0x51: capability pointer loop"),
            std::string::npos)
      << refusal(lspciText(loop));

  std::vector<uint8_t> header = image;
  header[kPciCapabilityList] = 0x20;
  EXPECT_NE(
      refusal(asString(header)).find("byte 0x34: capability pointer 0x20 points into the header"),
      std::string::npos)
      << refusal(asString(header));

  std::vector<uint8_t> past = image;
  past[PciDevice::kPcieCapOffset + kPciCapListNext] = 0xfc;  // the last capability links on
  past[0xfc] = kPciCapIdPm;  // an 8-byte PM capability at 0xfc runs past 0xff
  EXPECT_NE(refusal(asString(past)).find("runs past 0xff"), std::string::npos)
      << refusal(asString(past));

  std::vector<uint8_t> extLoop = image;
  extLoop[0x100] = 0x01;  // AER at 0x100 whose next is 0x100
  extLoop[0x102] = 0x01;
  extLoop[0x103] = 0x10;
  EXPECT_NE(refusal(asString(extLoop)).find("extended capability pointer loop"), std::string::npos)
      << refusal(asString(extLoop));
}

TEST_F(ConfigDumpTest, ResourceFileErrorsNameTheLine) {
  std::string notPow2 = kStandardResource;
  notPow2.replace(notPow2.find("0x00000000f000ffff"), 18, "0x00000000f000fffe");
  EXPECT_NE(refusal(asString(image), notPow2).find("resource:1: BAR0: size 0xffff"),
            std::string::npos)
      << refusal(asString(image), notPow2);

  std::string ioAsMem = kStandardResource;
  ioAsMem.replace(ioAsMem.find("0x0000000000040101"), 18, "0x0000000000040200");
  EXPECT_NE(refusal(asString(image), ioAsMem)
                .find("resource:5: BAR4 is memory in the resource file (flags 0x40200) but I/O in "
                      "the dump"),
            std::string::npos)
      << refusal(asString(image), ioAsMem);

  std::string not64 = kStandardResource;
  not64.replace(not64.find("0x000000000014220c"), 18, "0x000000000004220c");
  EXPECT_NE(refusal(asString(image), not64)
                .find("resource:3: BAR2 is 32-bit in the resource file but 64-bit"),
            std::string::npos)
      << refusal(asString(image), not64);

  EXPECT_NE(
      refusal(asString(image), "0x0 0x0 0x0\n").find("1 lines; the resource file has at least 7"),
      std::string::npos);
  EXPECT_NE(
      refusal(asString(image), "0x0 0x0 zz\n").find("resource:1: 'zz' is not a 0x-prefixed hex"),
      std::string::npos);
}

TEST_F(ConfigDumpTest, EveryOtherRefusalSaysWhatAndWhere) {
  const auto with = [&](uint32_t offset, uint8_t byte) {
    std::vector<uint8_t> b = image;
    b[offset] = byte;
    return refusal(asString(b));
  };
  EXPECT_NE(with(PciDevice::kPmCapOffset + kPciCapListNext, 0x52)
                .find("byte 0x41: capability pointer 0x52 is not dword aligned"),
            std::string::npos);
  EXPECT_NE(with(0x0e, 0x01).find("byte 0xe: header type 1 (a bridge"), std::string::npos);
  std::vector<uint8_t> absent = image;
  absent[0] = absent[1] = 0xff;
  EXPECT_NE(refusal(asString(absent)).find("byte 0x0: vendor ID 0xffff"), std::string::npos)
      << refusal(asString(absent));
  EXPECT_NE(with(kPciInterruptPin, 5).find("byte 0x3d: Interrupt Pin 5"), std::string::npos);
  EXPECT_NE(
      with(PciDevice::kMsixCapOffset + kPciMsixTable, 0x04).find("BAR4, which is not a memory BAR"),
      std::string::npos);
  EXPECT_NE(with(PciDevice::kMsixCapOffset + kPciMsixTable + 2, 0x01)
                .find("the MSI-X table (16 vectors at 0x12000) runs past BAR0 (65536 bytes)"),
            std::string::npos);
  EXPECT_NE(with(0x103, 0x08).find("byte 0x102: extended capability pointer 0x80 is outside"),
            std::string::npos)
      << with(0x103, 0x08);
  std::string notPrefetch = kStandardResource;
  notPrefetch.replace(notPrefetch.find("0x000000000014220c"), 18, "0x000000000014020c");
  EXPECT_NE(
      refusal(asString(image), notPrefetch)
          .find("resource:3: BAR2 is not prefetchable in the resource file but prefetchable in "
                "the dump"),
      std::string::npos)
      << refusal(asString(image), notPrefetch);
  std::string bigIo = kStandardResource;
  bigIo.replace(bigIo.find("0x000000000000101f"), 18, "0x00000000000011ff");
  EXPECT_NE(refusal(asString(image), bigIo).find("resource:5: BAR4: an I/O BAR of 512 bytes"),
            std::string::npos)
      << refusal(asString(image), bigIo);
  std::string rom = kStandardResource;
  rom.replace(rom.rfind("0x0000000000000000 0x0000000000000000 0x0000000000000000"), 56,
              "0x00000000fe000000 0x00000000fe0003ff 0x0000000000046200");
  EXPECT_NE(refusal(asString(image), rom).find("resource:7: the ROM's size 0x400"),
            std::string::npos)
      << refusal(asString(image), rom);
}

// --- devices from dumps: capabilities where the dump has them ------------------------------

std::string devicesDir() { return test::sourceDir() + "/devices"; }

TEST(ConfigDumpDevice, VirtioRngCapabilitiesSitWhereQemuPutsThem) {
  testing::BoundContext bound;
  const PciDeviceConfig c = loadDeviceFromDump(devicesDir() + "/dumps/virtio-rng-pci.lspci",
                                               devicesDir() + "/dumps/virtio-rng-pci.resource");
  PciDevice dev(c);
  EXPECT_EQ(dev.pcieCapOffset(), 0x40);
  EXPECT_EQ(dev.pmCapOffset(), 0x7c);
  EXPECT_EQ(dev.msixCapOffset(), 0xdc);
  EXPECT_EQ(dev.findCapability(kPciCapIdVndr), 0xc8);  // the first in the chain
  ASSERT_TRUE(c.msix.has_value());
  EXPECT_EQ(c.msix->bar, 1U);
  EXPECT_EQ(c.msix->vectors, 2U);
  EXPECT_EQ(msixPba(*c.msix).offset, 0x800U);
  EXPECT_EQ(dev.configSize(), 4096U);  // PCIe: the 256-byte dump is padded
  // Power-on: decode off, MSI-X disabled, addresses gone; the rest as dumped.
  EXPECT_EQ(cfgRead(dev, kPciCommand, 2), 0U);
  EXPECT_EQ(cfgRead(dev, 0xdc + kPciMsixFlags, 2), 0x0001U);
  EXPECT_EQ(cfgRead(dev, pciBaseAddress(4), 4), 0x0cU);
  EXPECT_EQ(cfgRead(dev, kPciSubsystemId, 2), 0x1100U);
  EXPECT_EQ(cfgRead(dev, 0xb4 + 16, 4), 4U);  // the notify multiplier, uninterpreted
  // The model acts on the registers at the dump's offsets.
  cfgWrite(dev, 0x7c + kPciPmCtrl, 2, 3);
  EXPECT_EQ(dev.powerState(), PciPowerState::kD3hot);
  cfgWrite(dev, 0x7c + kPciPmCtrl, 2, 0);
  EXPECT_EQ(dev.powerState(), PciPowerState::kD0);
  EXPECT_TRUE(dev.hasFlr());
  dev.assignResource(1, 0xfea4'1000);
  cfgWrite(dev, kPciCommand, 2, kPciCommandMemory);
  const uint64_t resets = dev.resetCount();
  cfgWrite(dev, 0x40 + kPciExpDevctl, 2, kPciExpDevctlBcrFlr);
  EXPECT_EQ(dev.resetCount(), resets + 1);
  EXPECT_EQ(cfgRead(dev, kPciCommand, 2), kPciCommandMemory);  // restored after the FLR
}

// The "dump of a real device": pciutils' capture of an AMD R9 Nano.
TEST(ConfigDumpDevice, RealAmdR9NanoDumpLoadsWithItsIdentityBarsAndCapabilities) {
  testing::BoundContext bound;
  const PciDeviceConfig c = loadDeviceFromDump(devicesDir() + "/dumps/amd-r9-nano.lspci",
                                               devicesDir() + "/dumps/amd-r9-nano.resource");
  EXPECT_EQ(c.vendorId, 0x1002);
  EXPECT_EQ(c.deviceId, 0x7300);
  EXPECT_EQ(c.classCode, 0x030000U);
  EXPECT_EQ(c.interruptPin, 1);
  ASSERT_TRUE(c.bars[0] && c.bars[2] && c.bars[4] && c.bars[5]);
  EXPECT_EQ(c.bars[0]->size, 256 * kMiB);
  EXPECT_EQ(c.bars[0]->kind, BarKind::kMem64);
  EXPECT_TRUE(c.bars[0]->prefetchable);
  EXPECT_EQ(c.bars[2]->size, 2 * kMiB);
  EXPECT_EQ(c.bars[4]->kind, BarKind::kIo);
  EXPECT_EQ(c.bars[4]->size, 256U);
  EXPECT_EQ(c.bars[5]->size, 256U << 10);
  EXPECT_EQ(c.bars[5]->kind, BarKind::kMem32);
  EXPECT_FALSE(c.bars[5]->prefetchable);
  EXPECT_EQ(c.romSize, uint64_t{128} << 10);
  ASSERT_TRUE(c.pm && c.pcie && c.msi);
  EXPECT_TRUE(c.pm->noSoftReset);
  EXPECT_TRUE(c.pm->d1);
  EXPECT_TRUE(c.pm->d2);
  EXPECT_FALSE(c.pcie->flr);
  EXPECT_EQ(c.pcie->atomicCompleter, 0U);
  EXPECT_EQ(c.msi->multipleMessageCapable, 0U);
  EXPECT_TRUE(c.msi->addr64);
  EXPECT_FALSE(c.msix.has_value());
  EXPECT_FALSE(c.sriovPf);

  PciDevice dev(c);
  EXPECT_EQ(dev.findCapability(kPciCapIdVndr), 0x48);
  EXPECT_EQ(dev.pmCapOffset(), 0x50);
  EXPECT_EQ(dev.pcieCapOffset(), 0x58);
  EXPECT_EQ(dev.msiCapOffset(), 0xa0);
  EXPECT_EQ(dev.findExtCapability(0x15), 0x200);  // Resizable BAR
  EXPECT_EQ(dev.findExtCapability(0x0e), 0x328);  // ARI, the last
  EXPECT_FALSE(dev.resetFunctionAvailable());     // no FLR, NoSoftRst set
  EXPECT_EQ(cfgRead(dev, kPciSubsystemId, 2), 0x0b36U);
  EXPECT_EQ(cfgRead(dev, kPciClassRevision, 1), 0xcaU);
  EXPECT_EQ(cfgRead(dev, 0xa0 + kPciMsiFlags, 2), 0x0080U);  // the dump's enable bit is cleared
}

}  // namespace
}  // namespace vfiomm
