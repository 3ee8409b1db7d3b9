// The PCI expansion ROM as the PCI core reads it (PCI Firmware
// Specification 3.0, ch. 5; drivers/pci/rom.c): the image a modelled
// device's ROM holds, and pci_get_rom_size(), which walks the chain of
// images to find how much of the ROM BAR holds code.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vfiomm {

struct PciDeviceConfig;

// The first bytes of the one x86 image a modelled device's ROM holds:
// the 0x55AA header and the PCI data structure ("PCIR", the device's IDs
// and class, the image's length, the last-image indicator). The rest of
// the image's `bytes` (a multiple of 512) is zeros, its code.
std::vector<uint8_t> pciRomImageHeader(const PciDeviceConfig& config, uint64_t bytes);

// The size of the image a ROM BAR of `romLen` bytes holds: half of it,
// so that the rest, which vfio reads as 0xFF, shows.
uint64_t pciRomImageBytes(uint64_t romLen);

struct PciRomSize {
  uint64_t bytes = 0;  // 0: no valid image, pci_map_rom() fails
  std::string info;    // the pci_info() line that ended the walk early, if any
};

// pci_get_rom_size() over a ROM of `size` bytes read through `read(offset,
// width)` (width 1, 2 or 4): the bytes up to the end of the last valid
// image, never more than `size`.
PciRomSize pciGetRomSize(const std::function<uint32_t(uint64_t, unsigned)>& read, uint64_t size);

}  // namespace vfiomm
