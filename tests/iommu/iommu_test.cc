// The IOMMU layer on its own: how iommu_map() splits a range into IOPTEs,
// what iommu_unmap() and iommu_iova_to_phys() see, and device DMA through
// an IOVA to host RAM and to a peer's BAR, including invariant 7.
#include "iommu/iommu.h"

#include <gtest/gtest.h>

#include "bound_context.h"
#include "iommu/iommu_domain.h"
#include "kernel/kernel.h"
#include "mm/system_ram.h"
#include "pci/pci_regs.h"
#include "pci/standard_device.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {
namespace {

constexpr uint64_t kVtdPgsizes = 0x4020'1000;  // 4K|2M|1G
constexpr uint64_t k4K = uint64_t{1} << 12;
constexpr uint64_t k2M = uint64_t{1} << 21;
constexpr uint64_t k1G = uint64_t{1} << 30;
constexpr int kRw = iommuprot::kRead | iommuprot::kWrite;

TEST(IommuDomain, MapSplitsIntoTheLargestLeavesAlignmentAllows) {
  testing::BoundContext bound;
  IommuDomain d(kVtdPgsizes);
  // dma-mapping.md §2.4: H at a 1 GiB aligned IOVA is two 1 GiB IOPTEs.
  ASSERT_TRUE(d.map(0x1'0000'0000, PhysAddr(kStandardBar2Start), 2 * k1G, kRw));
  EXPECT_EQ(d.iopteCounts().size1G, 2U);
  EXPECT_EQ(d.iopteCounts().total(), 2U);
  // Only 2 MiB aligned: 1024 PMD-sized IOPTEs.
  ASSERT_TRUE(d.map(0x2'0020'0000, PhysAddr(kStandardBar2Start), 2 * k1G, kRw));
  EXPECT_EQ(d.iopteCounts().size2M, 1024U);
  EXPECT_EQ(d.iopteCounts().size2M * k2M, 2 * k1G);
  // 64 KiB is below every large size.
  ASSERT_TRUE(d.map(0x10'0000, PhysAddr(kStandardBar0Start), 16 * k4K, kRw));
  EXPECT_EQ(d.iopteCounts().size4K, 16U);
  EXPECT_EQ(d.mapCalls(), 3U);
}

TEST(IommuDomain, MapRefusesMisalignedAndOccupiedRanges) {
  testing::BoundContext bound;
  IommuDomain d(kVtdPgsizes);
  EXPECT_EQ(d.map(0x1001, PhysAddr(0), k4K, kRw).error(), Errno::kEINVAL);
  EXPECT_EQ(d.map(0x1000, PhysAddr(0), 0, kRw).error(), Errno::kEINVAL);
  ASSERT_TRUE(d.map(0x4000, PhysAddr(0x8000), 2 * k4K, kRw));
  EXPECT_EQ(d.map(0x2000, PhysAddr(0x10000), 3 * k4K, kRw).error(), Errno::kEEXIST);
  EXPECT_EQ(d.iopteCounts().total(), 2U) << "a refused map leaves nothing behind";
}

TEST(IommuDomain, IovaToPhysAndUnmap) {
  testing::BoundContext bound;
  IommuDomain d(kVtdPgsizes);
  ASSERT_TRUE(d.map(0x4000'0000, PhysAddr(0x40'0000'0000), k1G, kRw));
  EXPECT_EQ(d.iovaToPhys(0x4000'0000 + 0x1234'5678), PhysAddr(0x40'1234'5678));
  EXPECT_FALSE(d.iovaToPhys(0x3fff'f000).has_value());
  EXPECT_EQ(d.iovaToPhysCalls(), 2U);
  EXPECT_EQ(d.unmap(0x4000'0000, k1G), k1G);
  EXPECT_FALSE(d.iovaToPhys(0x4000'0000).has_value());
  EXPECT_EQ(d.iopteCounts().total(), 0U);
}

// iovaToPhys() answers a leaf it found before without the domain's lock;
// an unmap must not leave that answer behind for a leaf mapped again.
TEST(IommuDomain, IovaToPhysSeesALeafRemappedElsewhere) {
  testing::BoundContext bound;
  IommuDomain d(kVtdPgsizes);
  ASSERT_TRUE(d.map(0x4000'0000, PhysAddr(0x40'0000'0000), k1G, kRw));
  EXPECT_EQ(d.iovaToPhys(0x4000'1000), PhysAddr(0x40'0000'1000));
  EXPECT_EQ(d.iovaToPhys(0x4000'2000), PhysAddr(0x40'0000'2000));
  ASSERT_EQ(d.unmap(0x4000'0000, k1G), k1G);
  ASSERT_TRUE(d.map(0x4000'0000, PhysAddr(0x80'0000'0000), k1G, kRw));
  EXPECT_EQ(d.iovaToPhys(0x4000'3000), PhysAddr(0x80'0000'3000));
  // A leaf mapped next to the one found last is found too.
  ASSERT_TRUE(d.map(0x8000'0000, PhysAddr(0x20'0000), k2M, kRw));
  EXPECT_EQ(d.iovaToPhys(0x8000'1000), PhysAddr(0x20'1000));
  EXPECT_EQ(d.iovaToPhys(0x4000'4000), PhysAddr(0x80'0000'4000));
  EXPECT_EQ(d.iovaToPhysCalls(), 5U) << "every call counts, answered with the lock or without";
}

// A reader racing an unmap and remap of the leaf it reads sees the old
// translation, the new one or none, never a mix of the two (under TSan this
// is also the data-race check of the lockless read).
TEST(IommuDomain, IovaToPhysRacingRemapSeesOneLeafOrNone) {
  testing::BoundContext bound;
  IommuDomain d(kVtdPgsizes);
  constexpr uint64_t kIova = 0x4000'0000;
  constexpr uint64_t kPaddrA = 0x40'0000'0000;
  constexpr uint64_t kPaddrB = 0x80'0020'0000;  // 2 MiB aligned only: 2 MiB leaves
  ASSERT_TRUE(d.map(kIova, PhysAddr(kPaddrA), k1G, kRw));
  constexpr int kRounds = 2000;
  testing::BoundThread remapper(bound.context(), [&d] {
    for (int i = 0; i < kRounds; ++i) {
      d.unmap(kIova, k1G);
      d.map(kIova, PhysAddr(i % 2 == 0 ? kPaddrB : kPaddrA), k1G, kRw);
    }
  });
  int bad = 0;
  for (int i = 0; i < 50 * kRounds; ++i) {
    const uint64_t offset = (static_cast<uint64_t>(i) * 0x20'1000) % k1G;
    const std::optional<PhysAddr> pa = d.iovaToPhys(kIova + offset);
    if (pa && *pa != PhysAddr(kPaddrA + offset) && *pa != PhysAddr(kPaddrB + offset)) ++bad;
  }
  remapper.join();
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(d.iovaToPhys(kIova + 0x1000), PhysAddr(kPaddrA + 0x1000)) << "the last remap was A";
}

TEST(Iommu, ValidIovaRangesAreTheApertureMinusTheMsiWindow) {
  Machine machine;
  Iommu iommu(machine);
  const std::vector<IovaRange> r = iommu.validIovaRanges();
  ASSERT_EQ(r.size(), 2U);
  EXPECT_EQ(r[0].start, 0U);
  EXPECT_EQ(r[0].last, 0xFEDF'FFFFU);
  EXPECT_EQ(r[1].start, 0xFEF0'0000U);
  EXPECT_EQ(r[1].last, (uint64_t{1} << 48) - 1);
}

class IommuDma : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel = *Kernel::create(KernelConfig{});
    // Nobody opens the target: power/control "on" keeps it out of the
    // idle D3hot vfio-pci puts an unopened device in.
    VfioDevice& t = kernel->addStandardDevice();
    t.pci().setRuntimePmAllowed(false);
    target = &t.pci().pdev();
    PciBus& bus = kernel->addBus(0x20);
    peer = &(*kernel->addVfioDevice(bus, standardDeviceConfig(0x20)))->pci().pdev();
    domain = kernel->iommu().allocDomain();
    kernel->iommu().attachDevice(*peer, domain);
  }
  void setMemoryDecode(PciDevice& d, bool on) {
    ASSERT_TRUE(d.configWrite(kPciCommand, 2, on ? kPciCommandMemory : 0));
  }

  std::unique_ptr<Kernel> kernel;
  PciDevice* target = nullptr;
  PciDevice* peer = nullptr;
  std::shared_ptr<IommuDomain> domain;
};

TEST_F(IommuDma, DeviceDmaReachesHostRam) {
  ASSERT_TRUE(domain->map(0x10'0000, PhysAddr(SystemRam::kBase), k4K, kRw));
  ASSERT_TRUE(kernel->iommu().dmaWrite(*peer, 0x10'0008, 8, 0x1122'3344'5566'7788));
  EXPECT_EQ(*kernel->iommu().dmaRead(*peer, 0x10'0008, 8), 0x1122'3344'5566'7788U);
  EXPECT_EQ(*kernel->iommu().dmaRead(*peer, 0x10'000c, 4), 0x1122'3344U);
}

TEST_F(IommuDma, PeerToPeerDmaReachesTheBarWhileItDecodes) {
  ASSERT_TRUE(domain->map(0x10'0000, PhysAddr(kStandardBar0Start), 16 * k4K, kRw));
  setMemoryDecode(*target, true);
  ASSERT_TRUE(kernel->iommu().dmaWrite(*peer, 0x10'0000 + 0x4000, 4, 0xCAFE));
  EXPECT_EQ(*kernel->iommu().dmaRead(*peer, 0x10'0000 + 0x4000, 4), 0xCAFEU);
  EXPECT_EQ(kernel->iommu().dmaDecodeViolationCount(), 0U);
}

TEST_F(IommuDma, DmaToABarWithDecodeOffIsInvariant7NotInvariant1) {
  ASSERT_TRUE(domain->map(0x10'0000, PhysAddr(kStandardBar0Start), 16 * k4K, kRw));
  setMemoryDecode(*target, false);
  const uint64_t cpuViolations = kernel->pciHost().decodeViolationCount();
  ASSERT_TRUE(kernel->iommu().dmaWrite(*peer, 0x10'2000, 4, 0xDEAD));
  EXPECT_EQ(*kernel->iommu().dmaRead(*peer, 0x10'2000, 4), 0xFFFF'FFFFU);
  ASSERT_EQ(kernel->iommu().dmaDecodeViolationCount(), 2U);
  const std::vector<DmaDecodeViolation> v = kernel->iommu().dmaDecodeViolations();
  ASSERT_EQ(v.size(), 2U);
  EXPECT_EQ(v[0].device, peer->name());
  EXPECT_EQ(v[0].iova, 0x10'2000U);
  EXPECT_TRUE(v[0].isWrite);
  EXPECT_FALSE(v[1].isWrite);
  EXPECT_EQ(kernel->pciHost().decodeViolationCount(), cpuViolations) << "no CPU access happened";
  // The dropped write did not land.
  setMemoryDecode(*target, true);
  EXPECT_EQ(*kernel->iommu().dmaRead(*peer, 0x10'2000, 4), 0U);
}

TEST_F(IommuDma, TheIommuBlocksWhatItDoesNotTranslate) {
  ASSERT_TRUE(domain->map(0x10'0000, PhysAddr(SystemRam::kBase), k4K, iommuprot::kRead));
  EXPECT_EQ(kernel->iommu().dmaRead(*peer, 0x20'0000, 4).error(), Errno::kEIO);
  EXPECT_EQ(kernel->iommu().dmaWrite(*peer, 0x10'0000, 4, 1).error(), Errno::kEIO);
  EXPECT_EQ(kernel->iommu().dmaRead(*target, 0x10'0000, 4).error(), Errno::kEIO)
      << "a device attached to no domain is blocked";
  EXPECT_EQ(kernel->iommu().dmarFaultCount(), 3U);
}

}  // namespace
}  // namespace vfiomm
