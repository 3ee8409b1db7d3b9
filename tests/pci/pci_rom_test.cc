// The PCI expansion ROM: the image a modelled device's ROM holds, and
// pci_get_rom_size()'s walk of a chain of images (drivers/pci/rom.c).
#include "pci/pci_rom.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "pci/pci_device.h"

namespace vfiomm::testing {
namespace {

// A ROM BAR's bytes, 0xFF where nothing was written, read little-endian.
class Rom {
 public:
  explicit Rom(uint64_t size) : bytes_(size, 0xFF) {}
  void put(uint64_t at, const std::vector<uint8_t>& image) {
    std::memcpy(bytes_.data() + at, image.data(), image.size());
  }
  void poke(uint64_t at, uint8_t v) { bytes_[at] = v; }
  PciRomSize size() const {
    return pciGetRomSize(
        [this](uint64_t off, unsigned width) {
          uint32_t v = 0;
          for (unsigned i = 0; i < width; ++i) v |= uint32_t{bytes_.at(off + i)} << (8 * i);
          return v;
        },
        bytes_.size());
  }

 private:
  std::vector<uint8_t> bytes_;
};

PciDeviceConfig device() {
  PciDeviceConfig c;
  c.vendorId = 0x8086;
  c.deviceId = 0x1572;
  return c;
}

TEST(PciRom, TheModelledImageIsOneValidLastImage) {
  const std::vector<uint8_t> image = pciRomImageHeader(device(), 32 << 10);
  ASSERT_EQ(image.size(), 0x34U) << "the header and the data structure";
  EXPECT_EQ(image[0], 0x55);
  EXPECT_EQ(image[1], 0xAA);
  const unsigned pcir = image[0x18] | (unsigned{image[0x19]} << 8);
  EXPECT_EQ(pcir % 4, 0U);
  EXPECT_EQ(std::string(image.begin() + pcir, image.begin() + pcir + 4), "PCIR");
  EXPECT_EQ(image[pcir + 4] | (image[pcir + 5] << 8), 0x8086);
  EXPECT_EQ(image[pcir + 0x15] & 0x80, 0x80) << "last image";
  Rom rom(64 << 10);
  rom.put(0, image);
  const PciRomSize s = rom.size();
  EXPECT_EQ(s.bytes, 32U << 10) << "the image, not the BAR";
  EXPECT_EQ(s.info, "");
  EXPECT_EQ(pciRomImageBytes(64 << 10), 32U << 10);
  EXPECT_EQ(pciRomImageBytes(512), 512U);
}

TEST(PciRom, AChainOfImagesEndsAtTheLastOne) {
  std::vector<uint8_t> first = pciRomImageHeader(device(), 4 << 10);
  first[0x1C + 0x15] = 0;  // not the last image
  Rom rom(64 << 10);
  rom.put(0, first);
  rom.put(4 << 10, pciRomImageHeader(device(), 8 << 10));
  EXPECT_EQ(rom.size().bytes, 12U << 10);
}

TEST(PciRom, ANonLastImageWithNothingAfterItIsAllThereIs) {
  std::vector<uint8_t> first = pciRomImageHeader(device(), 4 << 10);
  first[0x1C + 0x15] = 0;
  Rom rom(64 << 10);
  rom.put(0, first);
  const PciRomSize s = rom.size();
  EXPECT_EQ(s.bytes, 4U << 10);
  EXPECT_EQ(s.info, "No more image in the PCI ROM");
}

TEST(PciRom, InvalidHeadersMeanNoImage) {
  Rom blank(64 << 10);
  EXPECT_EQ(blank.size().bytes, 0U);
  EXPECT_EQ(blank.size().info, "Invalid PCI ROM header signature: expecting 0xaa55, got 0xffff");
  Rom noPcir(64 << 10);
  std::vector<uint8_t> image = pciRomImageHeader(device(), 4 << 10);
  image[0x1C] = 'X';
  noPcir.put(0, image);
  EXPECT_EQ(noPcir.size().bytes, 0U);
  EXPECT_EQ(noPcir.size().info,
            "Invalid PCI ROM data signature: expecting 0x52494350, got 0x52494358");
  Rom misaligned(64 << 10);
  image = pciRomImageHeader(device(), 4 << 10);
  image[0x18] = 0x1E;  // the data structure must be 4-byte aligned
  misaligned.put(0, image);
  EXPECT_EQ(misaligned.size().bytes, 0U);
}

TEST(PciRom, AnImageLongerThanTheBarIsCutAtTheBar) {
  Rom rom(4 << 10);
  std::vector<uint8_t> image = pciRomImageHeader(device(), 4 << 10);
  image[0x1C + 0x10] = 64;  // claims 32 KiB
  rom.put(0, image);
  EXPECT_EQ(rom.size().bytes, 4U << 10);
}

}  // namespace
}  // namespace vfiomm::testing
