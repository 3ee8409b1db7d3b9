// The C-style setup program (vfio_setup_program.cc) against devices of
// several shapes, through the group and the cdev path, in every design.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "kernel/kernel.h"
#include "pci/pci_bus.h"
#include "pci/standard_device.h"
#include "setup_program_run.h"
#include "uapi/libc.h"
#include "uapi/process.h"
#include "vfio/vfio_device.h"

namespace vfiomm {
namespace {

struct Shape {
  const char* name;
  PciDeviceConfig (*make)(uint8_t bus);
  bool rootBus = false;
};

PciDeviceConfig standardD(uint8_t bus) { return standardDeviceConfig(bus); }

PciDeviceConfig conventional(uint8_t bus) {
  PciDeviceConfig c = standardDeviceConfig(bus);
  c.pcie.reset();  // no ERR IRQ, 256-byte config space
  c.msi = MsiSpec{.multipleMessageCapable = 2};
  return c;
}

PciDeviceConfig pfWithAtomics(uint8_t bus) {
  PciDeviceConfig c = standardDeviceConfig(bus);
  c.sriovPf = true;
  c.pcie->atomicCompleter = kPciExpDevcap2AtomicComp32 | kPciExpDevcap2AtomicComp64;
  c.romSize = 64 << 10;
  return c;
}

PciDeviceConfig noResetNoPin(uint8_t bus) {
  PciDeviceConfig c = standardDeviceConfig(bus);
  c.pcie->flr = false;
  c.interruptPin = 0;
  c.msix.reset();
  return c;
}

const Shape kShapes[] = {
    {"standard_d", standardD},
    {"conventional_pci_with_msi", conventional},
    {"sriov_pf_with_atomics_and_rom", pfWithAtomics},
    {"root_bus_no_reset_no_pin", noResetNoPin, true},
};

using Param = std::tuple<DesignKind, size_t, bool>;

class VfioSetupProgram : public ::testing::TestWithParam<Param> {};

TEST_P(VfioSetupProgram, UAPI_SelftestStyleDeviceSetupChecksEveryAnswer) {
  const auto [design, shapeIndex, cdev] = GetParam();
  const Shape& shape = kShapes[shapeIndex];
  KernelConfig cfg;
  cfg.design = design;
  auto kernel = *Kernel::create(cfg);
  PciBus& bus = kernel->addBus(PciBusConfig{.number = 1,
                                            .behindBridge = !shape.rootBus,
                                            .rootPortAtomicCompleter = kPciExpDevcap2AtomicComp64});
  auto dev = kernel->addVfioDevice(bus, shape.make(1));
  ASSERT_TRUE(dev.has_value());
  testing::expectSetupProgramPasses(*kernel, **dev, cdev);
}

INSTANTIATE_TEST_SUITE_P(
    AllDesigns, VfioSetupProgram,
    ::testing::Combine(::testing::Values(DesignKind::kVmaList, DesignKind::kAddressSpace,
                                         DesignKind::kFillVma, DesignKind::kHugeFault,
                                         DesignKind::kPrefault),
                       ::testing::Range<size_t>(0, std::size(kShapes)), ::testing::Bool()),
    [](const ::testing::TestParamInfo<Param>& p) {
      std::string design(designName(std::get<0>(p.param)));
      std::replace(design.begin(), design.end(), '-', '_');
      return design + "_" + kShapes[std::get<1>(p.param)].name +
             (std::get<2>(p.param) ? "_cdev" : "_group");
    });

}  // namespace
}  // namespace vfiomm
