// Huge pages as DMA buffers (dma-mapping.md §3.3, IOMMUFD-08): an anonymous
// MAP_HUGETLB mapping takes physically contiguous, naturally aligned pages
// from the hugetlb pool, so pinning it yields contiguous pfns; native
// type1 (both modes) and iommufd's compat TYPE1v2 map a 1 GiB huge page
// with one 1 GiB IOPTE, the compat TYPE1 mode with 4 KiB IOPTEs only (it
// disables large pages so that v1 unmaps can cut areas).
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "abi/iommufd.h"
#include "abi/vfio.h"
#include "base/byte_units.h"
#include "base/page_geometry.h"
#include "iommu/iommu.h"
#include "iommu/iommu_domain.h"
#include "kernel/kernel.h"
#include "lock_order.h"
#include "mm/mm.h"
#include "mm/system_ram.h"
#include "mm/vm_flags.h"
#include "pci/pci_regs.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_container.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_iommu_type1.h"

namespace vfiomm {
namespace {

using namespace vfiomm::uapi;

constexpr uint32_t kRw = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
constexpr uint64_t kIova = uint64_t{4} << 30;  // 1 GiB aligned
constexpr int kPrivateAnon = map::kPrivate | map::kAnonymous;
constexpr int kRwProt = prot::kRead | prot::kWrite;

class HugetlbDmaTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (kernel == nullptr) return;
    const KernelContext::Scope in(kernel->context());
    EXPECT_EQ(testing::DocumentedLockOrder().undocumented(), std::vector<std::string>{});
  }
  // A kernel whose hugetlb pool has `pages1G` and `pages2M` pages; D; a
  // process allowed to pin 2 GiB.
  void boot(uint64_t pages1G, uint64_t pages2M = 0) {
    KernelConfig cfg;
    cfg.memory.hugepages1G = pages1G;
    cfg.memory.hugepages2M = pages2M;
    kernel = *Kernel::create(cfg);
    dev = &kernel->addStandardDevice();
    proc = Process::spawn(*kernel, "qemu");
    proc->setRlimitMemlock(2 * kGiB);
  }
  // D's group on a container (`path` /dev/vfio/vfio or /dev/iommu) set to
  // `type`, and D's device fd opened (attached to the container's domain).
  int container(const char* path, int type) {
    const int c = static_cast<int>(proc->open(path, O_RDWR));
    EXPECT_GE(c, 0);
    const int group = static_cast<int>(proc->open(kernel->groupPath(*dev), O_RDWR));
    EXPECT_EQ(proc->ioctl(group, VFIO_GROUP_SET_CONTAINER, const_cast<int*>(&c)), 0);
    EXPECT_EQ(proc->ioctl(c, VFIO_SET_IOMMU, ioctlArg(static_cast<unsigned long>(type))), 0);
    EXPECT_GE(proc->ioctl(group, VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(dev->name().c_str())),
              0);
    return c;
  }
  long mapDma(int c, uint64_t vaddr, uint64_t iova, uint64_t size) {
    vfio_iommu_type1_dma_map m{
        .argsz = sizeof(m), .flags = kRw, .vaddr = vaddr, .iova = iova, .size = size};
    return proc->ioctl(c, VFIO_IOMMU_MAP_DMA, &m);
  }
  long hugeMmap(uint64_t len, int sizeFlag) {
    return proc->mmap(0, len, kRwProt, kPrivateAnon | map::kHugetlb | sizeFlag, -1, 0);
  }
  IommuDomain& domain() { return *kernel->iommu().domainFor(dev->pdev()); }

  std::unique_ptr<Kernel> kernel;
  VfioDevice* dev = nullptr;
  std::shared_ptr<Process> proc;
};

TEST_F(HugetlbDmaTest, MapHugetlbTakesAlignedContiguousPagesFromThePool) {
  boot(1, 2);
  EXPECT_EQ(hugeMmap(2 * kMiB, 16 << map::kHugeShift), -22) << "no 64 KiB hstate";
  EXPECT_EQ(hugeMmap(2 * kGiB, map::kHuge1Gb), -12) << "the pool has one 1 GiB page";
  const uint64_t committed = kernel->vmCommit().committedPages();
  const long va1g = hugeMmap(kGiB, map::kHuge1Gb);
  ASSERT_GT(va1g, 0);
  EXPECT_EQ(static_cast<uint64_t>(va1g) % kGiB, 0U) << "huge-page aligned";
  EXPECT_EQ(hugeMmap(kGiB, map::kHuge1Gb), -12) << "the page is reserved";
  // The default size is 2 MiB; the length is rounded up to it.
  const long va2m = hugeMmap(3 * kMiB, 0);
  ASSERT_GT(va2m, 0);
  EXPECT_EQ(static_cast<uint64_t>(va2m) % (2 * kMiB), 0U);
  EXPECT_EQ(kernel->vmCommit().committedPages(), committed) << "reserved, not committed";
  const std::string smaps = proc->smaps();
  EXPECT_NE(smaps.find(" ht "), std::string::npos) << "VM_HUGETLB";
  EXPECT_EQ(smaps.find("THPeligible:           1"), std::string::npos) << "hugetlb is never THP";
  EXPECT_EQ(kernel->systemRam().hugePagesTotal(kGiB), 1U);
  EXPECT_EQ(kernel->systemRam().hugePagesTotal(2 * kMiB), 2U);
}

TEST_F(HugetlbDmaTest, WithoutAPoolMapHugetlbIsEnomem) {
  boot(0);
  EXPECT_EQ(hugeMmap(2 * kMiB, map::kHuge2Mb), -12);
  EXPECT_GT(proc->mmap(0, 2 * kMiB, kRwProt, kPrivateAnon | map::kHugetlb | map::kNoReserve, -1, 0),
            0)
      << "MAP_NORESERVE reserves nothing at mmap";
}

// The pool is outside the commit limit (hugetlb_total_pages()).
TEST_F(HugetlbDmaTest, ThePoolIsOutsideTheCommitLimit) {
  boot(0);
  const uint64_t without = kernel->vmCommit().commitLimitPages();
  proc.reset();
  kernel.reset();
  boot(1);
  EXPECT_EQ(without - kernel->vmCommit().commitLimitPages(), (kGiB / kPageSize) / 2)
      << "half of the pool's pages at overcommit_ratio 50";
}

// Native type1 pins the huge page as one run of contiguous pfns
// (vfio_pin_pages_remote() goes on while pfn == base + count) and maps it
// with one iommu_map(), which the IOMMU splits into the largest IOPTEs:
// one 1 GiB IOPTE in both modes (type1 v1 differs in unmap rules only).
TEST_F(HugetlbDmaTest, IOMMUFD_08_NativeType1MapsA1GiBHugePageWithOne1GIopte) {
  for (int type : {VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU}) {
    proc.reset();
    kernel.reset();
    boot(1);
    const int c = container("/dev/vfio/vfio", type);
    const long va = hugeMmap(kGiB, map::kHuge1Gb);
    ASSERT_GT(va, 0);
    ASSERT_EQ(mapDma(c, static_cast<uint64_t>(va), kIova, kGiB), 0) << type;
    EXPECT_EQ(domain().iopteCounts().size1G, 1U) << type;
    EXPECT_EQ(domain().iopteCounts().total(), 1U) << type;
    const std::optional<PhysAddr> pa = domain().iovaToPhys(kIova + 0x1234);
    ASSERT_TRUE(pa.has_value());
    EXPECT_EQ(pa->value() % kGiB, 0x1234U) << "a naturally aligned page";
    EXPECT_EQ(proc->mm().lockedVm(), kGiB / kPageSize) << "pinned and charged";
    EXPECT_EQ(proc->container(c)->type1()->stats().vaddrGetPfnsCalls, kGiB / kPageSize / 512)
        << "one per batch of 512 page pointers";
  }
}

// iommufd's compat container: TYPE1 disables large IOPTEs
// (iopt_disable_large_pages()), TYPE1v2 does not.
TEST_F(HugetlbDmaTest, IOMMUFD_08_CompatType1Maps4KiBIoptesOnlyType1v2One1GIopte) {
  for (int type : {VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU}) {
    proc.reset();
    kernel.reset();
    boot(1);
    const int c = container("/dev/iommu", type);
    const long va = hugeMmap(kGiB, map::kHuge1Gb);
    ASSERT_GT(va, 0);
    ASSERT_EQ(mapDma(c, static_cast<uint64_t>(va), kIova, kGiB), 0) << type;
    const IopteCounts n = domain().iopteCounts();
    if (type == VFIO_TYPE1_IOMMU) {
      EXPECT_EQ(n.size4K, kGiB / kPageSize);
      EXPECT_EQ(n.total(), kGiB / kPageSize);
    } else {
      EXPECT_EQ(n.size1G, 1U);
      EXPECT_EQ(n.total(), 1U);
    }
    const std::optional<PhysAddr> pa = domain().iovaToPhys(kIova + kGiB - 4);
    ASSERT_TRUE(pa.has_value());
    EXPECT_EQ(pa->value() % kGiB, kGiB - 4) << "the same contiguous page either way";
  }
}

}  // namespace
}  // namespace vfiomm
