#include "pci/pci_bus.h"

#include <gtest/gtest.h>

#include <latch>
#include <thread>
#include <vector>

#include "bound_context.h"
#include "hw/machine.h"
#include "pci/pci_host.h"
#include "pci/pci_regs.h"
#include "pci/standard_device.h"
#include "pci_test_support.h"

namespace vfiomm {
namespace {

PciDeviceConfig at(uint8_t bus, uint8_t slot, uint8_t function) {
  PciDeviceConfig c = standardDeviceConfig(bus, slot);
  c.function = function;
  return c;
}

class PciBusTest : public ::testing::Test {
 protected:
  testing::BoundContext boundContext;  // first: the objects below run on it
  PciDevice& add(PciBus& bus, uint8_t slot, uint8_t function = 0) {
    PciDevice& d = **host.addDevice(bus, at(bus.number(), slot, function));
    cfgWrite(d, kPciCommand, 2, kPciCommandMemory | kPciCommandMaster);
    return d;
  }

  Machine machine;
  PciHost host{machine};
};

TEST_F(PciBusTest, DevicesSharingABusShareItsResetScope) {
  PciBus& bus = host.addBus(PciBusConfig{.number = 1});
  PciDevice& a = add(bus, 0);
  PciDevice& b = add(bus, 1);
  PciDevice& c = add(bus, 1, 1);
  const std::vector<PciDevice*> all{&a, &b, &c};
  EXPECT_EQ(bus.resetScope(a), all);
  EXPECT_EQ(bus.resetScope(c), all);
  EXPECT_EQ(c.name(), "0000:01:01.1");
}

TEST_F(PciBusTest, WithSlotResetTheScopeIsTheSlot) {
  PciBus& bus = host.addBus(PciBusConfig{.number = 2, .behindBridge = true, .slotReset = true});
  PciDevice& a = add(bus, 0);
  PciDevice& b = add(bus, 1);
  PciDevice& c = add(bus, 1, 1);
  EXPECT_EQ(bus.resetScope(a), std::vector<PciDevice*>{&a});
  EXPECT_EQ(bus.resetScope(b), (std::vector<PciDevice*>{&b, &c}));
}

TEST_F(PciBusTest, RESET_07_ARootBusHasNoSlotOrBusReset) {
  PciBus& root = host.addBus(PciBusConfig{.number = 0, .behindBridge = false});
  PciDevice& d = add(root, 3);
  EXPECT_TRUE(root.isRoot());
  EXPECT_FALSE(root.busResetAvailable());
  EXPECT_TRUE(root.resetScope(d).empty());
  const uint64_t resets = counter("pci.bus_reset");
  EXPECT_EQ(root.resetBus(d).error(), Errno::kENOTTY);
  EXPECT_EQ(counter("pci.bus_reset"), resets);
}

TEST_F(PciBusTest, RESET_04_BusResetTakesEveryDeviceOffAndRestoresIt) {
  PciBus& bus = host.addBus(PciBusConfig{.number = 1});
  PciDevice& a = add(bus, 0);
  PciDevice& b = add(bus, 1);
  int offDuringReset = 0;
  uint64_t readDuringReset = 0;
  SchedPointAction during("pci.bus_reset", [&] {
    for (PciDevice* d : {&a, &b})
      if (d->inReset() && !d->memoryDecodeEnabled()) ++offDuringReset;
    readDuringReset = machine.physMemMap().read(PhysAddr(b.barStart(0)), 4, {});
  });
  const uint64_t resets = counter("pci.bus_reset");
  EXPECT_TRUE(bus.resetBus(a).has_value());
  EXPECT_EQ(during.runs, 1);
  EXPECT_EQ(offDuringReset, 2);
  EXPECT_EQ(readDuringReset, 0xffff'ffffU);
  EXPECT_EQ(host.barRegion(b, 0)->decodeViolationCount(), 1U);
  EXPECT_EQ(counter("pci.bus_reset"), resets + 1);
  for (PciDevice* d : {&a, &b}) {
    EXPECT_TRUE(d->memoryDecodeEnabled());
    EXPECT_FALSE(d->inReset());
    EXPECT_EQ(cfgRead(*d, kPciCommand, 2), uint32_t{kPciCommandMemory | kPciCommandMaster});
    EXPECT_EQ(cfgRead(*d, pciBaseAddress(0), 4), d->barStart(0));
    EXPECT_FALSE(d->deviceLock().isLocked());
  }
}

TEST_F(PciBusTest, RESET_09_AFailingBusResetReturnsItsErrorWithTheDevicesRestored) {
  PciBus& bus = host.addBus(PciBusConfig{.number = 1});
  PciDevice& a = add(bus, 0);
  PciDevice& b = add(bus, 1);
  bus.setResetFailure(Errno::kENOTTY);  // the link does not come back
  SchedPointAction during("pci.bus_reset", [] {});
  EXPECT_EQ(bus.resetBus(b).error(), Errno::kENOTTY);
  EXPECT_EQ(during.runs, 1) << "the reset did happen";
  for (PciDevice* d : {&a, &b}) {
    EXPECT_TRUE(d->memoryDecodeEnabled());
    EXPECT_FALSE(d->deviceLock().isLocked());
  }
  bus.setResetFailure(std::nullopt);
  EXPECT_TRUE(bus.resetBus(b).has_value());
}

TEST_F(PciBusTest, BusResetIsEagainWhileADeviceLockIsHeldElsewhere) {
  PciBus& bus = host.addBus(PciBusConfig{.number = 1});
  PciDevice& a = add(bus, 0);
  PciDevice& b = add(bus, 1);
  std::latch locked(1);
  std::latch release(1);
  testing::BoundThread holder(boundContext.context(), [&] {
    b.deviceLock().lock();
    locked.count_down();
    release.wait();
    b.deviceLock().unlock();
  });
  locked.wait();
  SchedPointAction during("pci.bus_reset", [] {});
  EXPECT_EQ(bus.resetBus(a).error(), Errno::kEAGAIN);
  EXPECT_EQ(during.runs, 0);
  EXPECT_FALSE(a.deviceLock().isLocked()) << "the lock taken before the contended one is released";
  EXPECT_TRUE(a.memoryDecodeEnabled());
  release.count_down();
  holder.join();
}

}  // namespace
}  // namespace vfiomm
