#include "pci/pci_rom.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/assert.h"
#include "pci/pci_device.h"

namespace vfiomm {
namespace {

constexpr uint16_t kRomSignature = 0xAA55;       // bytes 55 AA
constexpr uint32_t kDataSignature = 0x52494350;  // "PCIR"
constexpr uint64_t kImageUnit = 512;
// Offsets in the image header and in the PCI data structure.
constexpr uint64_t kHeaderDataPointer = 0x18;
constexpr uint64_t kDataOffset = 0x1C;  // where the model's image puts it: 4-byte aligned
constexpr uint64_t kDataVendor = 0x04;
constexpr uint64_t kDataDevice = 0x06;
constexpr uint64_t kDataLength = 0x0A;
constexpr uint64_t kDataRevision = 0x0C;
constexpr uint64_t kDataClassCode = 0x0D;
constexpr uint64_t kDataImageLength = 0x10;
constexpr uint64_t kDataIndicator = 0x15;
constexpr uint8_t kLastImage = 0x80;
constexpr uint16_t kDataStructLen = 0x18;

void put(std::vector<uint8_t>& image, uint64_t at, uint64_t value, unsigned bytes) {
  for (unsigned i = 0; i < bytes; ++i) image[at + i] = static_cast<uint8_t>(value >> (8 * i));
}

}  // namespace

std::vector<uint8_t> pciRomImageHeader(const PciDeviceConfig& config, uint64_t bytes) {
  VFIOMM_ASSERT(bytes >= kImageUnit && bytes % kImageUnit == 0 && bytes / kImageUnit <= 0xFFFF);
  std::vector<uint8_t> image(kDataOffset + kDataStructLen, 0);
  put(image, 0, kRomSignature, 2);
  put(image, 2, std::min<uint64_t>(bytes / kImageUnit, 0xFF), 1);  // the legacy size byte
  put(image, kHeaderDataPointer, kDataOffset, 2);
  const uint64_t pcir = kDataOffset;
  put(image, pcir, kDataSignature, 4);
  put(image, pcir + kDataVendor, config.vendorId, 2);
  put(image, pcir + kDataDevice, config.deviceId, 2);
  put(image, pcir + kDataLength, kDataStructLen, 2);
  put(image, pcir + kDataRevision, 3, 1);
  put(image, pcir + kDataClassCode, config.classCode, 3);  // prog-if, subclass, base class
  put(image, pcir + kDataImageLength, bytes / kImageUnit, 2);
  put(image, pcir + kDataIndicator, kLastImage, 1);  // code type 0: x86
  return image;
}

uint64_t pciRomImageBytes(uint64_t romLen) { return std::max(romLen / 2, kImageUnit); }

PciRomSize pciGetRomSize(const std::function<uint32_t(uint64_t, unsigned)>& read, uint64_t size) {
  PciRomSize out;
  uint64_t image = 0;
  bool last = false;
  uint64_t length = 0;
  do {
    // The header and the data structure must lie inside the ROM, the data
    // structure 4-byte aligned with a sane length, before their signatures
    // are read (pci_rom_is_header_valid(), pci_rom_is_data_struct_valid()).
    if (image + kHeaderDataPointer + 2 > size) break;
    if (const uint32_t sig = read(image, 2); sig != kRomSignature) {
      out.info = fmt::format("Invalid PCI ROM header signature: expecting {:#06x}, got {:#06x}",
                             kRomSignature, sig);
      break;
    }
    const uint64_t pds = image + read(image + kHeaderDataPointer, 2);
    if (pds % 4 != 0 || pds + kDataLength + 2 > size) break;
    const uint32_t dataLen = read(pds + kDataLength, 2);
    if (dataLen == 0 || dataLen == 0xFFFF || pds + dataLen > size) break;
    if (const uint32_t sig = read(pds, 4); sig != kDataSignature) {
      out.info = fmt::format("Invalid PCI ROM data signature: expecting {:#010x}, got {:#010x}",
                             kDataSignature, sig);
      break;
    }
    last = (read(pds + kDataIndicator, 1) & kLastImage) != 0;
    length = read(pds + kDataImageLength, 2);
    image += length * kImageUnit;
    if (image >= size) break;
    if (!last && read(image, 2) != kRomSignature) {
      out.info = "No more image in the PCI ROM";
      break;
    }
  } while (length != 0 && !last);
  out.bytes = std::min(image, size);
  return out;
}

}  // namespace vfiomm
