#include "pci/standard_device.h"

#include "base/assert.h"

namespace vfiomm {

namespace {

// An arbitrary, non-VGA identity.
constexpr uint16_t kStandardVendorId = 0x1af4;
constexpr uint16_t kStandardDeviceId = 0x10f0;

}  // namespace

PciDeviceConfig standardDeviceConfig(uint8_t bus, uint8_t slot) {
  PciDeviceConfig c;
  c.vendorId = kStandardVendorId;
  c.deviceId = kStandardDeviceId;
  c.bus = bus;
  c.slot = slot;
  c.bars[0] = BarSpec{kStandardBar0Len, BarKind::kMem32, false};
  c.bars[1] = BarSpec{kStandardBar1Len, BarKind::kMem32, false};
  c.bars[2] = BarSpec{kStandardBar2Len, BarKind::kMem64, true};
  c.bars[4] = BarSpec{kStandardBar4Len, BarKind::kIo, false};
  c.pm = PmCapSpec{.noSoftReset = true};
  c.pcie = PcieCapSpec{.flr = true};
  c.msix = MsixSpec{0, kStandardMsixTableOffset, kStandardMsixVectors};
  return c;
}

ResourcePlacement standardDevicePlacement() {
  ResourcePlacement p;
  p.bars[0] = kStandardBar0Start;
  p.bars[1] = kStandardBar1Start;
  p.bars[2] = kStandardBar2Start;
  return p;
}

PciDevice& addStandardDevice(PciHost& host, PciBus& bus) {
  Result<PciDevice*> dev =
      host.addDevice(bus, standardDeviceConfig(bus.number()), standardDevicePlacement());
  VFIOMM_ASSERT_MSG(dev.has_value(), "Standard device D's addresses are taken");
  return **dev;
}

}  // namespace vfiomm
