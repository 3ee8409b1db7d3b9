// The C-style setup program (vfio_setup_program.cc) against every device of
// the catalog (docs/devices.md), through the group and the cdev path, in
// every design: what issue 12 asks of the catalog.
// A device whose MSI-X table starts a BAR (virtio-rng-pci's BAR1) is the
// case where pread and the mapping disagree on purpose: the program finds
// the table through the config space, as a VMM does.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>

#include "kernel/kernel.h"
#include "pci/device_catalog.h"
#include "setup_program_run.h"
#include "source_dir.h"
#include "uapi/libc.h"
#include "uapi/process.h"
#include "vfio/mapping_design.h"
#include "vfio/vfio_device.h"

namespace vfiomm {
namespace {

const DeviceCatalog& catalog() {
  static const DeviceCatalog c = DeviceCatalog::load(test::sourceDir() + "/devices");
  return c;
}

using Param = std::tuple<DesignKind, bool>;

class CatalogSetupProgram : public ::testing::TestWithParam<Param> {};

TEST_P(CatalogSetupProgram, EveryCatalogDeviceSetsUpAndEveryAnswerChecks) {
  const auto [design, cdev] = GetParam();
  ASSERT_FALSE(catalog().devices().empty());
  for (const CatalogDevice& d : catalog().devices()) {
    SCOPED_TRACE(d.name);
    KernelConfig cfg;
    cfg.design = design;
    auto kernel = *Kernel::create(cfg);
    PciDeviceConfig c = d.config;
    c.bus = 1;
    auto dev = kernel->addVfioDevice(kernel->addBus(1), c);
    ASSERT_TRUE(dev.has_value());
    testing::expectSetupProgramPasses(*kernel, **dev, cdev);
  }
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, CatalogSetupProgram,
                         ::testing::Combine(::testing::ValuesIn(allDesigns()), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<Param>& p) {
                           std::string design(designName(std::get<0>(p.param)));
                           std::replace(design.begin(), design.end(), '-', '_');
                           return design + (std::get<1>(p.param) ? "_cdev" : "_group");
                         });

}  // namespace
}  // namespace vfiomm
