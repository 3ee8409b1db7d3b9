#include "pci/device_catalog.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/byte_units.h"
#include "bound_context.h"
#include "kernel/kernel.h"
#include "mm/vm_flags.h"
#include "pci/pci_regs.h"
#include "source_dir.h"
#include "uapi/process.h"
#include "vfio/mapping_design.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_fixture.h"

namespace vfiomm {
namespace {

using namespace vfiomm::uapi;

std::string devicesDir() { return test::sourceDir() + "/devices"; }

const DeviceCatalog& catalog() {
  static const DeviceCatalog c = DeviceCatalog::load(devicesDir());
  return c;
}

const PciDeviceConfig& configOf(const std::string& name) {
  const CatalogDevice* d = catalog().find(name);
  EXPECT_NE(d, nullptr) << name;
  return d->config;
}

TEST(DeviceCatalog, HoldsTheIssuesDevices) {
  testing::BoundContext bound;
  for (const char* name : {"ivshmem-64m", "ivshmem-1g", "ivshmem-2g", "edu", "pci-testdev",
                           "virtio-rng-pci", "nvidia-h100-pcie", "amd-r9-nano", "connectx-5-ex"})
    EXPECT_NE(catalog().find(name), nullptr) << name;
  for (const CatalogDevice& d : catalog().devices()) {
    EXPECT_FALSE(d.source.empty()) << d.name;
    EXPECT_TRUE(d.config.configImage.size() == 256 || d.config.configImage.size() == 4096)
        << d.name;
  }
}

TEST(DeviceCatalog, IvshmemVariantsDifferOnlyInTheSharedMemoryBar) {
  testing::BoundContext bound;
  const uint64_t sizes[] = {64 * kMiB, kGiB, 2 * kGiB};
  const char* names[] = {"ivshmem-64m", "ivshmem-1g", "ivshmem-2g"};
  for (int i = 0; i < 3; ++i) {
    const PciDeviceConfig& c = configOf(names[i]);
    EXPECT_EQ(c.vendorId, 0x1af4);
    EXPECT_EQ(c.deviceId, 0x1110);
    EXPECT_EQ(c.classCode, 0x050000U);
    ASSERT_TRUE(c.bars[0] && c.bars[2]);
    EXPECT_EQ(c.bars[0]->size, 256U);
    EXPECT_EQ(c.bars[0]->backing, BarBacking::kRegisters);
    EXPECT_EQ(c.bars[2]->size, sizes[i]);
    EXPECT_EQ(c.bars[2]->kind, BarKind::kMem64);
    EXPECT_TRUE(c.bars[2]->prefetchable);
    EXPECT_EQ(c.bars[2]->backing, BarBacking::kMemory);
    EXPECT_FALSE(c.msix || c.msi || c.pm || c.pcie);
    const PciDevice dev(c);
    EXPECT_EQ(dev.configRead(kPciClassRevision, 1).value_or(0), 1U);
    EXPECT_EQ(dev.configRead(kPciSubsystemId, 2).value_or(0), 0x1100U);
    EXPECT_EQ(dev.configRead(kPciStatus, 2).value_or(0) & kPciStatusCapList, 0U);
  }
}

TEST(DeviceCatalog, EduPciTestdevVirtioAndH100HaveTheirLayouts) {
  testing::BoundContext bound;
  const PciDeviceConfig& edu = configOf("edu");
  EXPECT_EQ(edu.vendorId, 0x1234);
  EXPECT_EQ(edu.deviceId, 0x11e8);
  EXPECT_EQ(edu.bars[0]->size, kMiB);
  EXPECT_EQ(edu.bars[0]->backing, BarBacking::kRegisters);
  EXPECT_EQ(edu.bars[0]->unimplemented, 0xff);
  ASSERT_TRUE(edu.msi.has_value());
  EXPECT_EQ(PciDevice(edu).msiCapOffset(), 0x40);

  const PciDeviceConfig& testdev = configOf("pci-testdev");
  EXPECT_EQ(testdev.vendorId, 0x1b36);
  EXPECT_EQ(testdev.deviceId, 0x0005);
  EXPECT_EQ(testdev.bars[0]->size, 4096U);
  EXPECT_EQ(testdev.bars[1]->kind, BarKind::kIo);
  EXPECT_EQ(testdev.interruptPin, 0);

  const PciDeviceConfig& rng = configOf("virtio-rng-pci");
  EXPECT_EQ(rng.deviceId, 0x1044);
  ASSERT_TRUE(rng.pm && rng.pcie && rng.msix);
  EXPECT_TRUE(rng.pcie->flr);
  EXPECT_EQ(rng.bars[4]->size, 16U << 10);
  EXPECT_EQ(rng.bars[1]->backing, BarBacking::kRegisters);

  const PciDeviceConfig& h100 = configOf("nvidia-h100-pcie");
  EXPECT_EQ(h100.bars[0]->size, 16 * kMiB);
  EXPECT_EQ(h100.bars[0]->kind, BarKind::kMem32);
  EXPECT_EQ(h100.bars[1]->size, 128 * kGiB);
  EXPECT_EQ(h100.bars[1]->kind, BarKind::kMem64);
  EXPECT_EQ(h100.bars[3]->size, 32 * kMiB);
  EXPECT_TRUE(h100.pcie && h100.pcie->flr);
}

// A kernel of `design` with catalog device `c` on bus 1, opened by a
// process through the group path.
struct Opened {
  std::unique_ptr<Kernel> kernel;
  VfioDevice* dev = nullptr;
  std::shared_ptr<Process> proc;
  int fd = -1;
};

Opened openDevice(PciDeviceConfig c, DesignKind design = DesignKind::kHugeFault) {
  Opened o;
  KernelConfig cfg;
  cfg.design = design;
  o.kernel = *Kernel::create(cfg);
  c.bus = 1;
  Result<VfioDevice*> dev = o.kernel->addVfioDevice(o.kernel->addBus(1), c);
  EXPECT_TRUE(dev.has_value());
  if (!dev) return o;
  o.dev = *dev;
  o.proc = Process::spawn(*o.kernel, "qemu");
  Process& p = *o.proc;
  const long container = p.open("/dev/vfio/vfio", O_RDWR);
  const long group = p.open(o.kernel->groupPath(*o.dev), O_RDWR);
  int ci = static_cast<int>(container);
  EXPECT_EQ(p.ioctl(static_cast<int>(group), VFIO_GROUP_SET_CONTAINER, &ci), 0);
  EXPECT_EQ(p.ioctl(static_cast<int>(container), VFIO_SET_IOMMU, ioctlArg(VFIO_TYPE1v2_IOMMU)), 0);
  o.fd = static_cast<int>(p.ioctl(static_cast<int>(group), VFIO_GROUP_GET_DEVICE_FD,
                                  const_cast<char*>(o.dev->name().c_str())));
  EXPECT_GE(o.fd, 0);
  return o;
}

// Every catalog device, in every design: opened, its identity read through
// the config region, every mmappable BAR mapped and touched.
class CatalogDeviceOpens : public ::testing::TestWithParam<DesignKind> {};

TEST_P(CatalogDeviceOpens, EveryDeviceOpensAndEveryMappableBarMaps) {
  for (const CatalogDevice& d : catalog().devices()) {
    SCOPED_TRACE(d.name);
    const PciDeviceConfig& c = d.config;
    Opened o = openDevice(c, GetParam());
    ASSERT_GE(o.fd, 0);
    Process& p = *o.proc;
    uint32_t ids = 0;
    ASSERT_EQ(p.pread(o.fd, &ids, 4, 7ULL << 40), 4);
    EXPECT_EQ(ids, uint32_t{c.vendorId} | uint32_t{c.deviceId} << 16);
    unsigned mapped = 0;
    for (uint32_t bar = 0; bar < kPciStdNumBars; ++bar) {
      vfio_region_info info{.argsz = sizeof(vfio_region_info), .index = bar};
      ASSERT_EQ(p.ioctl(o.fd, VFIO_DEVICE_GET_REGION_INFO, &info), 0);
      EXPECT_EQ(info.size, c.bars[bar] ? c.bars[bar]->size : 0) << "BAR" << bar;
      if ((info.flags & VFIO_REGION_INFO_FLAG_MMAP) == 0) continue;
      const uint64_t len = std::min<uint64_t>(info.size, 2 * kMiB);
      const long va = p.mmap(0, len, prot::kRead | prot::kWrite, map::kShared, o.fd, info.offset);
      ASSERT_GT(va, 0) << "BAR" << bar;
      EXPECT_EQ(p.thread().load(static_cast<uint64_t>(va), 4).sig.signo, 0) << "BAR" << bar;
      ++mapped;
    }
    EXPECT_GT(mapped, 0U);
  }
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, CatalogDeviceOpens, ::testing::ValuesIn(allDesigns()),
                         testing::designParamName);

// edu's register BAR as a user sees it through an mmap: the identification
// register, unimplemented offsets reading ~0, read-only and latched writes.
TEST(DeviceCatalog, EduRegistersThroughAMapping) {
  testing::BoundContext bound;
  Opened o = openDevice(configOf("edu"));
  ASSERT_GE(o.fd, 0);
  Process& p = *o.proc;
  const long va = p.mmap(0, kMiB, prot::kRead | prot::kWrite, map::kShared, o.fd, 0);
  ASSERT_GT(va, 0);
  const auto at = [&](uint64_t off) { return static_cast<uint64_t>(va) + off; };
  EXPECT_EQ(p.thread().load(at(0x00)).value, 0x010000edU);
  EXPECT_EQ(p.thread().load(at(0x10)).value, 0xffff'ffffU);
  EXPECT_EQ(p.thread().store(at(0x00), 0x55).sig.signo, 0);
  EXPECT_EQ(p.thread().load(at(0x00)).value, 0x010000edU);
  EXPECT_EQ(p.thread().store(at(0x04), 0x55).sig.signo, 0);
  EXPECT_EQ(p.thread().load(at(0x04)).value, 0x55U);
  EXPECT_EQ(p.thread().load(at(0x40000)).value, 0xffff'ffffU);
}

// The issue's real device: its region and IRQ info as vfio-uapi.md §2-4 and
// vfio-bar-mapping.md §1 say for its BARs and capabilities.
TEST(DeviceCatalog, RealR9NanoRegionAndIrqInfoFollowTheSpec) {
  testing::BoundContext bound;
  Opened o = openDevice(configOf("amd-r9-nano"));
  ASSERT_GE(o.fd, 0);
  Process& p = *o.proc;
  vfio_device_info dinfo{.argsz = sizeof(vfio_device_info)};
  ASSERT_EQ(p.ioctl(o.fd, VFIO_DEVICE_GET_INFO, &dinfo), 0);
  // No FLR and NoSoftRst set, but alone behind its port: the bus reset.
  EXPECT_EQ(dinfo.flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
  EXPECT_EQ(dinfo.num_regions, 9U);
  EXPECT_EQ(dinfo.num_irqs, 5U);

  const auto irq = [&](uint32_t index) {
    vfio_irq_info info{.argsz = sizeof(vfio_irq_info), .index = index};
    EXPECT_EQ(p.ioctl(o.fd, VFIO_DEVICE_GET_IRQ_INFO, &info), 0) << index;
    return info;
  };
  const uint32_t eventfdNoresize = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE;
  EXPECT_EQ(irq(VFIO_PCI_INTX_IRQ_INDEX).count, 1U);  // Interrupt Pin A
  EXPECT_EQ(irq(VFIO_PCI_INTX_IRQ_INDEX).flags,
            VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED);
  EXPECT_EQ(irq(VFIO_PCI_MSI_IRQ_INDEX).count, 1U);  // MMC 0
  EXPECT_EQ(irq(VFIO_PCI_MSI_IRQ_INDEX).flags, eventfdNoresize);
  EXPECT_EQ(irq(VFIO_PCI_MSIX_IRQ_INDEX).count, 0U);  // no MSI-X capability
  EXPECT_EQ(irq(VFIO_PCI_ERR_IRQ_INDEX).count, 1U);   // a PCIe function
  EXPECT_EQ(irq(VFIO_PCI_ERR_IRQ_INDEX).flags, eventfdNoresize);
  EXPECT_EQ(irq(VFIO_PCI_REQ_IRQ_INDEX).count, 1U);

  const auto region = [&](uint32_t index) {
    vfio_region_info info{.argsz = sizeof(vfio_region_info), .index = index};
    EXPECT_EQ(p.ioctl(o.fd, VFIO_DEVICE_GET_REGION_INFO, &info), 0) << index;
    return info;
  };
  const uint32_t rwm =
      VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP;
  const uint64_t sizes[] = {256 * kMiB, 0, 2 * kMiB, 0, 256, 256 << 10};
  const uint32_t flags[] = {
      rwm, 0, rwm, 0, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, rwm};
  for (uint32_t bar = 0; bar < kPciStdNumBars; ++bar) {
    const vfio_region_info info = region(bar);
    EXPECT_EQ(info.offset, uint64_t{bar} << 40) << bar;
    EXPECT_EQ(info.size, sizes[bar]) << bar;
    EXPECT_EQ(info.flags, flags[bar]) << bar;  // no MSI-X: no capability anywhere
  }
  const vfio_region_info rom = region(6);
  EXPECT_EQ(rom.size, 128U << 10);
  EXPECT_EQ(rom.flags, VFIO_REGION_INFO_FLAG_READ);
  EXPECT_EQ(region(7).size, 4096U);  // PCIe: 4 KiB of config space
}

// The issue's current NIC: a ConnectX-5 Ex PF from its real 256-byte dump.
// FLR is its reset; MSI-X (64 vectors, table and PBA in BAR0) makes BAR0
// carry the MSIX_MAPPABLE capability; no MSI capability; INTA; its VPD
// capability is vfio's to emulate, over a blank EEPROM here.
TEST(DeviceCatalog, RealConnectX5RegionAndIrqInfoFollowTheSpec) {
  testing::BoundContext bound;
  const PciDeviceConfig& c = configOf("connectx-5-ex");
  EXPECT_EQ(c.vendorId, 0x15b3);
  EXPECT_EQ(c.deviceId, 0x1019);
  Opened o = openDevice(c);
  ASSERT_GE(o.fd, 0);
  Process& p = *o.proc;
  vfio_device_info dinfo{.argsz = sizeof(vfio_device_info)};
  ASSERT_EQ(p.ioctl(o.fd, VFIO_DEVICE_GET_INFO, &dinfo), 0);
  EXPECT_EQ(dinfo.flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
  EXPECT_EQ(o.dev->pdev().resetMethods().front(), PciResetMethod::kFlr);

  const auto irq = [&](uint32_t index) {
    vfio_irq_info info{.argsz = sizeof(vfio_irq_info), .index = index};
    EXPECT_EQ(p.ioctl(o.fd, VFIO_DEVICE_GET_IRQ_INFO, &info), 0) << index;
    return info;
  };
  EXPECT_EQ(irq(VFIO_PCI_INTX_IRQ_INDEX).count, 1U);
  EXPECT_EQ(irq(VFIO_PCI_MSI_IRQ_INDEX).count, 0U);
  EXPECT_EQ(irq(VFIO_PCI_MSIX_IRQ_INDEX).count, 64U);  // table size field 0x3f
  EXPECT_EQ(irq(VFIO_PCI_ERR_IRQ_INDEX).count, 1U);
  EXPECT_EQ(irq(VFIO_PCI_REQ_IRQ_INDEX).count, 1U);

  vfio_region_info bar0{.argsz = sizeof(vfio_region_info), .index = 0};
  ASSERT_EQ(p.ioctl(o.fd, VFIO_DEVICE_GET_REGION_INFO, &bar0), 0);
  EXPECT_EQ(bar0.size, 32 * kMiB);
  EXPECT_EQ(bar0.flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
                            VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS);
  EXPECT_EQ(bar0.argsz, sizeof(vfio_region_info) + sizeof(vfio_info_cap_header));
  for (uint32_t bar = 1; bar < kPciStdNumBars; ++bar) {
    vfio_region_info info{.argsz = sizeof(vfio_region_info), .index = bar};
    ASSERT_EQ(p.ioctl(o.fd, VFIO_DEVICE_GET_REGION_INFO, &info), 0);
    EXPECT_EQ(info.size, 0U) << bar;
  }
  vfio_region_info rom{.argsz = sizeof(vfio_region_info), .index = 6};
  ASSERT_EQ(p.ioctl(o.fd, VFIO_DEVICE_GET_REGION_INFO, &rom), 0);
  EXPECT_EQ(rom.size, kMiB);
  EXPECT_EQ(rom.flags, VFIO_REGION_INFO_FLAG_READ);

  // The chain as the card links it; the PMCSR NoSoftRst bit from the dump.
  const auto cfg = [&](uint64_t off, unsigned size) {
    uint32_t v = 0;
    EXPECT_EQ(p.pread(o.fd, &v, size, (7ULL << 40) + off), static_cast<long>(size));
    return v;
  };
  EXPECT_EQ(cfg(0x34, 1), 0x60U);
  EXPECT_EQ(cfg(0x60, 2), 0x4810U);  // PCIe -> 0x48
  EXPECT_EQ(cfg(0x48, 2), 0x9c03U);  // VPD -> 0x9c
  EXPECT_EQ(cfg(0x9c, 2), 0xc011U);  // MSI-X -> 0xc0
  EXPECT_EQ(cfg(0xc0, 2), 0x4009U);  // vendor -> 0x40
  EXPECT_EQ(cfg(0x40, 2), 0x0001U);  // PM, last
  EXPECT_NE(cfg(0x44, 2) & kPciPmCtrlNoSoftReset, 0U);
  // A VPD read over the blank EEPROM fails: F stays clear, Data as it was.
  const uint16_t addr = 0x0010;
  ASSERT_EQ(p.pwrite(o.fd, &addr, 2, (7ULL << 40) + 0x48 + kPciVpdAddr), 2);
  EXPECT_EQ(cfg(0x48 + kPciVpdAddr, 2), 0x0010U);
  EXPECT_EQ(cfg(0x48 + kPciVpdData, 4), 0U);
}

// --- bad catalog files --------------------------------------------------------------

class CatalogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("vfiomm-catalog-" +
           std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::string refusal(const std::string& path) {
    try {
      loadCatalogDevice(path);
    } catch (const CatalogError& e) {
      return e.what();
    }
    return "accepted";
  }
  std::filesystem::path dir;
};

TEST_F(CatalogFileTest, UnknownKeysAndBadValuesNameFileLineColumn) {
  const std::string f = write("a.yaml",
                              "name: a\nsource: here\nvendor: 1\ndevice: 2\nclass: 3\n"
                              "bars:\n  - {index: 0, size: 3000}\n");
  EXPECT_EQ(refusal(f), f + ":7:22: a BAR's size is a power of two");
  const std::string g = write("b.yaml", "name: b\nsource: here\ncolour: red\n");
  EXPECT_EQ(refusal(g).find(g + ":3:1: unknown key 'colour'"), 0U) << refusal(g);
  const std::string h = write("c.yaml", "name: c\nvendor: 1\n");
  EXPECT_NE(refusal(h).find("a source key"), std::string::npos);
}

TEST_F(CatalogFileTest, ABadDumpIsRefusedWithTheCatalogLineAndTheDumpsOwnError) {
  write("d.lspci", "00: f4 1a 00 10 00 00 10 00 00 00 00 02 00 00 00 00\n10: 00\n");
  write("d.resource", "0x0 0x0 0x0\n");
  const std::string f =
      write("d.yaml", "name: d\nsource: here\nconfig_dump: d.lspci\nresource: d.resource\n");
  const std::string why = refusal(f);
  EXPECT_EQ(why.find(f + ":3:14: "), 0U) << why;
  EXPECT_NE(why.find("d.lspci:2: 1 bytes in the row"), std::string::npos) << why;
}

TEST_F(CatalogFileTest, RegistersMayNotOverlapTheMsixTable) {
  const std::string f = write("m.yaml",
                              "name: m\nsource: here\nvendor: 1\ndevice: 2\nclass: 3\n"
                              "bars:\n  - index: 0\n    size: 4K\n    backing: registers\n"
                              "    registers:\n      - {name: r, offset: 0x10, size: 4}\n"
                              "capabilities:\n  msix: {bar: 0, table_offset: 0, vectors: 4}\n");
  EXPECT_NE(refusal(f).find(":11:9: register 'r' overlaps the MSI-X table"), std::string::npos)
      << refusal(f);
}

TEST(DeviceCatalogListing, DescribesIdsBarsBackingAndCapabilities) {
  testing::BoundContext bound;
  const std::string rng = describeCatalogDevice(*catalog().find("virtio-rng-pci"));
  EXPECT_NE(rng.find("virtio-rng-pci  1af4:1044 class 00ff00"), std::string::npos) << rng;
  EXPECT_NE(rng.find("BAR1 mem32 4 KiB registers"), std::string::npos) << rng;
  EXPECT_NE(rng.find("BAR4 mem64 prefetchable 16 KiB memory"), std::string::npos) << rng;
  EXPECT_NE(rng.find("caps: MSI-X@0xdc vendor@0xc8 vendor@0xb4 vendor@0xa4 vendor@0x94 vendor@0x84 "
                     "PM@0x7c PCIe@0x40"),
            std::string::npos)
      << rng;
  const std::string all = listCatalog(devicesDir());
  EXPECT_EQ(all.find(fmt::format("{} devices in {}\n", catalog().devices().size(), devicesDir())),
            0U);
  EXPECT_NE(all.find(rng), std::string::npos);
  EXPECT_LT(all.find("\namd-r9-nano "), all.find("\nedu "));  // by name
  EXPECT_THROW(listCatalog(devicesDir() + "/nowhere"), CatalogError);
  const std::string testdev = describeCatalogDevice(*catalog().find("pci-testdev"));
  EXPECT_NE(testdev.find("BAR1 io 256 B\n"), std::string::npos) << testdev;
  EXPECT_NE(testdev.find("caps: none"), std::string::npos) << testdev;
}

}  // namespace
}  // namespace vfiomm
