// conformance.md's Standard device D, which most tests start from: BAR0 a
// 64 KiB 32-bit memory BAR at 0xF000_0000 holding a 16-vector MSI-X table
// at 0x2000; BAR1 256 bytes of memory at 0xF001_0000 (page aligned);
// BAR2/3 one 64-bit prefetchable 2 GiB BAR at 0x40_0000_0000; BAR4 32
// bytes of I/O ports; BAR5 unimplemented; no ROM; PCIe with FLR (so
// reset_works); a PM capability.
#pragma once

#include <cstdint>

#include "pci/pci_device.h"
#include "pci/pci_host.h"

namespace vfiomm {

inline constexpr uint64_t kStandardBar0Start = 0xF000'0000;
inline constexpr uint64_t kStandardBar0Len = 0x1'0000;
inline constexpr uint64_t kStandardBar1Start = 0xF001'0000;
inline constexpr uint64_t kStandardBar1Len = 0x100;
inline constexpr uint64_t kStandardBar2Start = 0x40'0000'0000;
inline constexpr uint64_t kStandardBar2Len = uint64_t{2} << 30;
inline constexpr uint64_t kStandardBar4Len = 32;
inline constexpr uint32_t kStandardMsixTableOffset = 0x2000;
inline constexpr unsigned kStandardMsixVectors = 16;

// D's configuration at `bus` `slot`.0. PMCSR has NoSoftRst set, as on most
// current devices: D3hot -> D0 keeps the configuration.
PciDeviceConfig standardDeviceConfig(uint8_t bus, uint8_t slot = 0);
// D's fixed addresses (BAR0, BAR1, BAR2); BAR4's port is allocated.
ResourcePlacement standardDevicePlacement();
// D at slot 0 of `bus`, at the spec's addresses. One per host: a second
// D must be added from standardDeviceConfig() with allocated addresses.
// The device comes out of power-on: its driver enables decode.
PciDevice& addStandardDevice(PciHost& host, PciBus& bus);

}  // namespace vfiomm
