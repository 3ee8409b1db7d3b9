// The type1 container (dma-mapping.md §1, §2; conformance IDs DMA-xx of §8):
// Setup C is Standard device D alone in its group, a TYPE1v2 container, the
// device fd open, RLIMIT_MEMLOCK 64 KiB; BAR0 (64 KiB at 0xF000_0000) and
// BAR2 (2 GiB, "H") are mmapped where a test needs them.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string_view>
#include <vector>

#include "base/byte_units.h"
#include "base/counter.h"
#include "iommu/iommu.h"
#include "kernel/kernel.h"
#include "lock_order.h"
#include "mm/fake_bar_file.h"
#include "mm/mm.h"
#include "mm/system_ram.h"
#include "pci/pci_regs.h"
#include "pci/standard_device.h"
#include "sync/lockdep.h"
#include "sync/sched_hook.h"
#include "uapi/invariant_monitor.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/line_up.h"
#include "vfio/vfio_container.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {
namespace {

using namespace vfiomm::uapi;

constexpr uint64_t kBar0Offset = 0;
constexpr uint64_t kBar2Offset = uint64_t{2} << 40;
constexpr uint64_t kConfigOffset = uint64_t{7} << 40;
constexpr uint32_t kRw = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
// A 1 GiB aligned user address for BAR mmaps that must line up with PUDs.
constexpr uint64_t kAlignedVa = uint64_t{0x40} << 30;

class Type1Test : public ::testing::Test {
 protected:
  void SetUp() override { boot(DesignKind::kHugeFault); }
  // Every nesting the test made is in docs/architecture.md's lock order
  // (vma-list's inversions are the bug it shows).
  void TearDown() override {
    if (kernel == nullptr || kernel->config().design == DesignKind::kVmaList) return;
    const KernelContext::Scope in(kernel->context());
    EXPECT_EQ(testing::DocumentedLockOrder().undocumented(), std::vector<std::string>{});
  }

  void boot(DesignKind design, std::string profile = "", unsigned long type = VFIO_TYPE1v2_IOMMU,
            std::optional<KernelProfile> profileOverride = std::nullopt,
            const Type1Params& type1Params = {}) {
    proc.reset();
    kernel.reset();
    KernelConfig cfg;
    cfg.design = design;
    cfg.profile = std::move(profile);
    cfg.profileOverride = std::move(profileOverride);
    cfg.type1 = type1Params;
    kernel = *Kernel::create(cfg);
    dev = &kernel->addStandardDevice();
    proc = Process::spawn(*kernel, "qemu");
    proc->setRlimitMemlock(64 * kKiB);
    container = static_cast<int>(proc->open("/dev/vfio/vfio", O_RDWR));
    group = static_cast<int>(proc->open(kernel->groupPath(*dev), O_RDWR));
    ASSERT_EQ(proc->ioctl(group, VFIO_GROUP_SET_CONTAINER, &container), 0);
    ASSERT_EQ(proc->ioctl(container, VFIO_SET_IOMMU, ioctlArg(type)), 0);
    fd = static_cast<int>(
        proc->ioctl(group, VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(dev->name().c_str())));
    ASSERT_GE(fd, 0);
    setMemory(true);
  }

  long mapDma(uint64_t vaddr, uint64_t iova, uint64_t size, uint32_t flags = kRw) {
    vfio_iommu_type1_dma_map m{
        .argsz = sizeof(m), .flags = flags, .vaddr = vaddr, .iova = iova, .size = size};
    return proc->ioctl(container, VFIO_IOMMU_MAP_DMA, &m);
  }
  // Returns the ioctl's result; `*removed` gets the size written back.
  long unmapDma(uint64_t iova, uint64_t size, uint32_t flags = 0, uint64_t* removed = nullptr) {
    vfio_iommu_type1_dma_unmap u{.argsz = sizeof(u), .flags = flags, .iova = iova, .size = size};
    const long r = proc->ioctl(container, VFIO_IOMMU_UNMAP_DMA, &u);
    if (removed != nullptr) *removed = u.size;
    return r;
  }
  long mmapBar(uint64_t offset, uint64_t len, int prot = prot::kRead | prot::kWrite,
               uint64_t at = 0) {
    return proc->mmap(at, len, prot, map::kShared | (at != 0 ? map::kFixed : 0), fd, offset);
  }
  long anon(uint64_t len) {
    return proc->mmap(0, len, prot::kRead | prot::kWrite, map::kPrivate | map::kAnonymous, -1, 0);
  }
  void setMemory(bool on) {
    uint32_t cmd = 0;
    ASSERT_EQ(proc->pread(fd, &cmd, 2, kConfigOffset + kPciCommand), 2);
    cmd = on ? (cmd | kPciCommandMemory) : (cmd & ~uint32_t{kPciCommandMemory});
    ASSERT_EQ(proc->pwrite(fd, &cmd, 2, kConfigOffset + kPciCommand), 2);
  }
  // PMCSR's PowerState field: 0 = D0, 3 = D3hot.
  void setPowerState(uint32_t state) {
    const uint64_t pmcsr = kConfigOffset + *pdev().pmCapOffset() + kPciPmCtrl;
    uint32_t ctrl = 0;
    ASSERT_EQ(proc->pread(fd, &ctrl, 2, pmcsr), 2);
    ctrl = (ctrl & ~uint32_t{kPciPmCtrlStateMask}) | state;
    ASSERT_EQ(proc->pwrite(fd, &ctrl, 2, pmcsr), 2);
  }
  VfioIommuType1& type1() { return *proc->container(container)->type1(); }
  IommuDomain& domain() { return type1().domain(); }
  PciDevice& pdev() { return dev->pci().pdev(); }

  std::unique_ptr<Kernel> kernel;
  VfioDevice* dev = nullptr;
  std::shared_ptr<Process> proc;
  int container = -1;
  int group = -1;
  int fd = -1;
};

// The GET_INFO reply with its capability chain, as user space parses it.
struct InfoReply {
  vfio_iommu_type1_info info;
  std::vector<uint8_t> buf;
  template <typename T>
  T at(uint32_t offset) const {
    T v;
    std::memcpy(&v, &buf[offset], sizeof(v));
    return v;
  }
};

InfoReply getInfo(Process& p, int container) {
  InfoReply r;
  r.info.argsz = sizeof(r.info);
  EXPECT_EQ(p.ioctl(container, VFIO_IOMMU_GET_INFO, &r.info), 0);
  r.buf.assign(r.info.argsz, 0);
  uint32_t argsz = r.info.argsz;
  std::memcpy(r.buf.data(), &argsz, sizeof(argsz));
  EXPECT_EQ(p.ioctl(container, VFIO_IOMMU_GET_INFO, r.buf.data()), 0);
  std::memcpy(&r.info, r.buf.data(), sizeof(r.info));
  return r;
}

// The DMA_AVAIL capability's value, walking the chain.
uint32_t dmaAvailCap(const InfoReply& r) {
  for (uint32_t off = r.info.cap_offset; off != 0;) {
    const auto h = r.at<vfio_info_cap_header>(off);
    if (h.id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)
      return r.at<vfio_iommu_type1_info_dma_avail>(off).avail;
    off = h.next;
  }
  ADD_FAILURE() << "no DMA_AVAIL capability";
  return 0;
}

TEST_F(Type1Test, DMA_01_ContainerExtensions) {
  const int fresh = static_cast<int>(proc->open("/dev/vfio/vfio", O_RDWR));
  EXPECT_EQ(proc->ioctl(fresh, VFIO_GET_API_VERSION, nullptr), 0);
  EXPECT_EQ(proc->ioctl(fresh, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_TYPE1_IOMMU)), 1);
  EXPECT_EQ(proc->ioctl(fresh, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_TYPE1v2_IOMMU)), 1);
  EXPECT_EQ(proc->ioctl(fresh, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_UNMAP_ALL)), 1);
  EXPECT_EQ(proc->ioctl(fresh, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_UPDATE_VADDR)), 0);
  EXPECT_EQ(proc->ioctl(container, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_UPDATE_VADDR)), 1);
  EXPECT_EQ(proc->ioctl(fresh, VFIO_CHECK_EXTENSION, ioctlArg(99)), 0);
  // DMA_CC_IOMMU needs an instance to ask its domains.
  EXPECT_EQ(proc->ioctl(fresh, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_DMA_CC_IOMMU)), 0);
  EXPECT_EQ(proc->ioctl(container, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_DMA_CC_IOMMU)), 1);
}

TEST_F(Type1Test, DMA_02_SetIommuOnceAndOnlyAKnownType) {
  EXPECT_EQ(proc->ioctl(container, VFIO_SET_IOMMU, ioctlArg(VFIO_TYPE1v2_IOMMU)), -22);
  // An empty container: only a group's owner may enable an IOMMU, and
  // without a driver the driver's ioctls are -EINVAL.
  const int fresh = static_cast<int>(proc->open("/dev/vfio/vfio", O_RDWR));
  EXPECT_EQ(proc->ioctl(fresh, VFIO_SET_IOMMU, ioctlArg(VFIO_TYPE1v2_IOMMU)), -22);
  EXPECT_EQ(proc->ioctl(fresh, VFIO_IOMMU_MAP_DMA, nullptr), -22);
  EXPECT_EQ(proc->ioctl(fresh, VFIO_IOMMU_DIRTY_PAGES, nullptr), -22);
  EXPECT_EQ(proc->ioctl(fresh, VFIO_GROUP_GET_STATUS, nullptr), -22) << "not a container ioctl";
  // With type1, what it does not know is -ENOTTY.
  EXPECT_EQ(proc->ioctl(container, VFIO_GROUP_GET_STATUS, nullptr), -25);
  // With a group: SPAPR_TCE (2) has no driver on x86.
  VfioDevice* other = *kernel->addVfioDevice(kernel->addBus(0x30), standardDeviceConfig(0x30));
  const int otherGroup = static_cast<int>(proc->open(kernel->groupPath(*other), O_RDWR));
  int c = fresh;
  ASSERT_EQ(proc->ioctl(otherGroup, VFIO_GROUP_SET_CONTAINER, &c), 0);
  EXPECT_EQ(proc->ioctl(fresh, VFIO_SET_IOMMU, ioctlArg(2)), -19);
}

// dma-mapping.md §1.2, in vfio_group_ioctl_set_container()'s order.
TEST_F(Type1Test, DMA_03_GroupContainerErrnos) {
  EXPECT_EQ(proc->ioctl(group, VFIO_GROUP_SET_CONTAINER, &container), -22) << "already set";
  EXPECT_EQ(proc->ioctl(group, VFIO_GROUP_UNSET_CONTAINER, nullptr), -16) << "device fd open";
  VfioDevice* other = *kernel->addVfioDevice(kernel->addBus(0x30), standardDeviceConfig(0x30));
  const int otherGroup = static_cast<int>(proc->open(kernel->groupPath(*other), O_RDWR));
  // The model has no pipe; an eventfd is as much "not a container".
  int notAContainer = static_cast<int>(proc->eventfd(0, 0));
  EXPECT_EQ(proc->ioctl(otherGroup, VFIO_GROUP_SET_CONTAINER, &notAContainer), -77);  // EBADFD
  int closed = -1;
  EXPECT_EQ(proc->ioctl(otherGroup, VFIO_GROUP_SET_CONTAINER, &closed), -9);
  EXPECT_EQ(proc->ioctl(otherGroup, VFIO_GROUP_UNSET_CONTAINER, nullptr), -22) << "none set";
  int fresh = static_cast<int>(proc->open("/dev/vfio/vfio", O_RDWR));
  ASSERT_EQ(proc->ioctl(otherGroup, VFIO_GROUP_SET_CONTAINER, &fresh), 0);
  EXPECT_EQ(
      proc->ioctl(otherGroup, VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(other->name().c_str())),
      -22)
      << "before SET_IOMMU";
  EXPECT_EQ(proc->ioctl(otherGroup, VFIO_GROUP_UNSET_CONTAINER, nullptr), 0);
  EXPECT_EQ(proc->ioctl(otherGroup, VFIO_GROUP_UNSET_CONTAINER, nullptr), -22);
}

// vfio_group_fops_open(): one open file per group; a second program, or a
// second open by the same one, is refused, and a forked child shares it.
TEST_F(Type1Test, DMA_03_AGroupOpensOnce) {
  EXPECT_EQ(proc->open(kernel->groupPath(*dev), O_RDWR), -16);
  auto other = Process::spawn(*kernel, "other");
  EXPECT_EQ(other->open(kernel->groupPath(*dev), O_RDWR), -16);
  auto child = proc->fork();
  ASSERT_NE(child, nullptr);
  vfio_group_status status{.argsz = sizeof(status)};
  EXPECT_EQ(child->ioctl(group, VFIO_GROUP_GET_STATUS, &status), 0);
  EXPECT_EQ(status.flags, VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
}

// The group's release leaves the container, and the last group to leave
// takes the type1 instance and every mapping with it (§1.1: "there is no
// unset"). A device fd holds the group file, so closing only the group fd
// releases nothing.
TEST_F(Type1Test, DMA_03_TheGroupsLastCloseReleasesTheContainer) {
  const long buf = anon(16 * kKiB);
  ASSERT_GT(buf, 0);
  ASSERT_EQ(mapDma(static_cast<uint64_t>(buf), 0x10'0000, 16 * kKiB), 0);
  ASSERT_EQ(proc->mm().lockedVm(), 4U);
  ASSERT_EQ(proc->close(group), 0);
  EXPECT_NE(proc->container(container)->type1(), nullptr) << "the device fd holds the group";
  EXPECT_EQ(proc->mm().lockedVm(), 4U);
  EXPECT_EQ(proc->open(kernel->groupPath(*dev), O_RDWR), -16) << "still open through the device";
  ASSERT_EQ(proc->close(fd), 0);
  fd = -1;
  EXPECT_EQ(proc->container(container)->type1(), nullptr);
  EXPECT_EQ(proc->mm().lockedVm(), 0U) << "release unmapped and unpinned";
  EXPECT_FALSE(kernel->iommu().dmaRead(pdev(), 0x10'0000, 4).has_value());
  EXPECT_EQ(proc->ioctl(container, VFIO_IOMMU_MAP_DMA, nullptr), -22) << "no driver any more";
  group = static_cast<int>(proc->open(kernel->groupPath(*dev), O_RDWR));
  ASSERT_GE(group, 0);
  vfio_group_status status{.argsz = sizeof(status)};
  EXPECT_EQ(proc->ioctl(group, VFIO_GROUP_GET_STATUS, &status), 0);
  EXPECT_EQ(status.flags, VFIO_GROUP_FLAGS_VIABLE);
}

TEST_F(Type1Test, DMA_04_GetInfoCapabilityChain) {
  vfio_iommu_type1_info info{.argsz = 8};
  EXPECT_EQ(proc->ioctl(container, VFIO_IOMMU_GET_INFO, &info), -22);
  info = vfio_iommu_type1_info{.argsz = 24};
  ASSERT_EQ(proc->ioctl(container, VFIO_IOMMU_GET_INFO, &info), 0);
  EXPECT_EQ(info.flags, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
  EXPECT_EQ(info.iova_pgsizes, 0x4020'1000U);
  EXPECT_EQ(info.cap_offset, 0U);
  // migration 32 + DMA_AVAIL 12 padded to 16 + IOVA_RANGE 16 + 2 x 16.
  EXPECT_EQ(info.argsz, 24U + 32 + 16 + 48);

  const InfoReply r = getInfo(*proc, container);
  ASSERT_EQ(r.info.cap_offset, 24U);
  const auto mig = r.at<vfio_iommu_type1_info_cap_migration>(24);
  EXPECT_EQ(mig.header.id, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
  EXPECT_EQ(mig.pgsize_bitmap, 0x1000U);
  EXPECT_EQ(mig.max_dirty_bitmap_size, 256 * kMiB);
  const auto avail = r.at<vfio_iommu_type1_info_dma_avail>(mig.header.next);
  EXPECT_EQ(avail.header.id, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
  EXPECT_EQ(avail.avail, 65535U);
  const uint32_t rangeAt = avail.header.next;
  const auto ranges = r.at<vfio_iommu_type1_info_cap_iova_range>(rangeAt);
  EXPECT_EQ(ranges.header.id, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
  EXPECT_EQ(ranges.header.next, 0U);
  ASSERT_EQ(ranges.nr_iovas, 2U);
  const auto r0 = r.at<vfio_iova_range>(rangeAt + 16);
  const auto r1 = r.at<vfio_iova_range>(rangeAt + 32);
  EXPECT_EQ(r0.start, 0U);
  EXPECT_EQ(r0.end, 0xFEDF'FFFFU);
  EXPECT_EQ(r1.start, 0xFEF0'0000U);
  EXPECT_EQ(r1.end, (uint64_t{1} << 48) - 1);
}

TEST_F(Type1Test, DMA_05_MapChecksInOrder) {
  const long buf = anon(64 * kKiB);
  ASSERT_GT(buf, 0);
  const auto va = static_cast<uint64_t>(buf);
  EXPECT_EQ(mapDma(va, 0x10'0000, 16 * kKiB, 0), -22);
  EXPECT_EQ(mapDma(va, 0x10'0000, 16 * kKiB, 1U << 3), -22);
  EXPECT_EQ(mapDma(va, 0x10'0000, 0), -22);
  EXPECT_EQ(mapDma(va, 0x1000 + 1, 16 * kKiB), -22);
  EXPECT_EQ(mapDma(va, 0xFEE0'0000, 16 * kKiB), -22) << "the MSI window is reserved";
  ASSERT_EQ(mapDma(va, 0x10'0000, 16 * kKiB), 0);
  EXPECT_EQ(mapDma(va, 0x10'0000, 16 * kKiB), -17);
  EXPECT_EQ(mapDma(va, 0x10'3000, 16 * kKiB), -17) << "overlapping by 4 KiB";
  // Alignment (step 5) is checked before overlap (step 7).
  EXPECT_EQ(mapDma(va, 0x10'3000, 16 * kKiB + 1), -22);
  EXPECT_EQ(mapDma(va + 16 * kKiB, 0x10'4000, 16 * kKiB), 0) << "adjacent";
  EXPECT_EQ(dmaAvailCap(getInfo(*proc, container)), 65533U) << "adjacent calls are two entries";
}

TEST_F(Type1Test, DMA_06_WrappingIovaIsEinvalInTheEinvalEra) {
  const long buf = anon(8 * kKiB);
  ASSERT_GT(buf, 0);
  const uint64_t top = ~uint64_t{0} - 4 * kKiB + 1;
  EXPECT_EQ(mapDma(static_cast<uint64_t>(buf), top, 8 * kKiB), -22);
  EXPECT_EQ(unmapDma(top, 8 * kKiB), -22);
}

TEST_F(Type1Test, DMA_06_WrappingIovaIsEoverflowInTheEoverflowEra) {
  KernelProfile p = *KernelProfile::byName("linux-6.15");
  p.vfio.type1OverflowErrno = true;
  boot(DesignKind::kHugeFault, "", VFIO_TYPE1v2_IOMMU, p);
  const long buf = anon(8 * kKiB);
  ASSERT_GT(buf, 0);
  const uint64_t top = ~uint64_t{0} - 4 * kKiB + 1;
  EXPECT_EQ(mapDma(static_cast<uint64_t>(buf), top, 8 * kKiB), -75);
  EXPECT_EQ(unmapDma(top, 8 * kKiB), -75);
  // The overflow checks come before the flag check (step 3 before 4).
  EXPECT_EQ(mapDma(static_cast<uint64_t>(buf), top, 8 * kKiB, 0), -75);
}

TEST_F(Type1Test, DMA_07_DmaEntryLimit) {
  // dma_entry_limit is a module parameter: an instance made with 2.
  VfioIommuType1 t(kernel->iommu(), kernel->systemRam(), kernel->machine().log(),
                   kernel->profile().vfio, true, Type1Params{.dmaEntryLimit = 2});
  const Type1Caller caller{proc->thread().task(), proc->mm(), 64 * kKiB};
  const auto va = static_cast<uint64_t>(anon(16 * kKiB));
  auto map = [&](uint64_t vaddr, uint64_t iova) {
    vfio_iommu_type1_dma_map m{
        .argsz = sizeof(m), .flags = kRw, .vaddr = vaddr, .iova = iova, .size = 4 * kKiB};
    auto r = t.ioctl(VFIO_IOMMU_MAP_DMA, &m, caller);
    return r ? *r : -static_cast<long>(r.error());
  };
  EXPECT_EQ(map(va, 0x1000), 0);
  EXPECT_EQ(map(va + 4 * kKiB, 0x2000), 0);
  EXPECT_EQ(map(va + 8 * kKiB, 0x3000), -28);
  EXPECT_EQ(t.dmaAvail(), 0U);
  vfio_iommu_type1_dma_unmap u{.argsz = sizeof(u), .iova = 0x1000, .size = 4 * kKiB};
  ASSERT_TRUE(t.ioctl(VFIO_IOMMU_UNMAP_DMA, &u, caller));
  EXPECT_EQ(t.dmaAvail(), 1U);
  EXPECT_EQ(map(0x7000'0000'0000, 0x1000), -14) << "nothing mapped there";
  EXPECT_EQ(t.dmaAvail(), 1U) << "a failed map leaves the count";
}

TEST_F(Type1Test, DMA_08_AnonymousMemoryIsPinnedAndCharged) {
  const auto va = static_cast<uint64_t>(anon(68 * kKiB));
  ASSERT_EQ(mapDma(va, 0x10'0000, 64 * kKiB), 0);
  EXPECT_EQ(proc->mm().lockedVm(), 16U);
  EXPECT_EQ(type1().stats().pinnedPages, 16U);
  const size_t logLines = kernel->machine().log().lines().size();
  EXPECT_EQ(mapDma(va + 64 * kKiB, 0x20'0000, 4 * kKiB), -12);
  const std::vector<std::string> log = kernel->machine().log().lines();
  ASSERT_EQ(log.size(), logLines + 1);
  EXPECT_EQ(log.back(), "vfio_pin_pages_remote: RLIMIT_MEMLOCK (65536) exceeded");
  EXPECT_EQ(domain().iopteCounts().total(), 16U) << "the failed map left no IOPTE";
  uint64_t removed = 0;
  ASSERT_EQ(unmapDma(0x10'0000, 64 * kKiB, 0, &removed), 0);
  EXPECT_EQ(removed, 64 * kKiB);
  EXPECT_EQ(proc->mm().lockedVm(), 0U);
}

// UNMAP_DMA(VADDR) leaves the IOPTEs and the pins and invalidates the
// vaddr; MAP_DMA(VADDR) of exactly that range gives it a new one
// (dma-mapping.md §1.4 row 7, §1.5). Meanwhile no group may attach.
TEST_F(Type1Test, DMA_01_UpdateVaddrInvalidatesAndRestoresAMapping) {
  constexpr uint32_t kVaddr = VFIO_DMA_MAP_FLAG_VADDR;
  const auto va = static_cast<uint64_t>(anon(16 * kKiB));
  ASSERT_EQ(mapDma(va, 0x10'0000, 16 * kKiB), 0);
  EXPECT_EQ(mapDma(va, 0x10'0000, 16 * kKiB, kVaddr), -22) << "vaddr still valid";
  EXPECT_EQ(mapDma(va, 0x30'0000, 16 * kKiB, kVaddr), -2) << "no mapping there";
  EXPECT_EQ(mapDma(va, 0x10'0000, 16 * kKiB, kVaddr | VFIO_DMA_MAP_FLAG_READ), -22);
  uint64_t removed = 0;
  ASSERT_EQ(unmapDma(0x10'0000, 16 * kKiB, kVaddr, &removed), 0);
  EXPECT_EQ(removed, 16 * kKiB);
  EXPECT_TRUE(domain().iovaToPhys(0x10'0000).has_value()) << "the IOPTEs stay";
  EXPECT_EQ(proc->mm().lockedVm(), 4U);
  EXPECT_EQ(type1().dmaAvail(), 65534U);
  EXPECT_EQ(unmapDma(0x10'0000, 16 * kKiB, kVaddr), -22) << "already invalid";

  VfioDevice* other = *kernel->addVfioDevice(kernel->addBus(0x30), standardDeviceConfig(0x30));
  const int otherGroup = static_cast<int>(proc->open(kernel->groupPath(*other), O_RDWR));
  int c = container;
  EXPECT_EQ(proc->ioctl(otherGroup, VFIO_GROUP_SET_CONTAINER, &c), -16);

  EXPECT_EQ(mapDma(va, 0x10'0000, 8 * kKiB, kVaddr), -22) << "not the whole mapping";
  EXPECT_EQ(mapDma(va, 0x10'0000, 16 * kKiB, kRw), -17) << "a new mapping over it";
  const auto va2 = static_cast<uint64_t>(anon(16 * kKiB));
  ASSERT_EQ(mapDma(va2, 0x10'0000, 16 * kKiB, kVaddr), 0);
  EXPECT_EQ(proc->ioctl(otherGroup, VFIO_GROUP_SET_CONTAINER, &c), 0);
  ASSERT_EQ(unmapDma(0x10'0000, 16 * kKiB, 0, &removed), 0);
  EXPECT_EQ(removed, 16 * kKiB);
  EXPECT_EQ(proc->mm().lockedVm(), 0U);
}

// An invalidation that meets an invalid vaddr undoes itself; a new vaddr
// from another process moves the pins' charge to that process's mm
// (vfio_change_dma_owner).
TEST_F(Type1Test, DMA_01_UpdateVaddrFromAnotherProcessMovesTheCharge) {
  constexpr uint32_t kVaddr = VFIO_DMA_MAP_FLAG_VADDR;
  const auto va = static_cast<uint64_t>(anon(16 * kKiB));
  ASSERT_EQ(mapDma(va, 0x10'0000, 8 * kKiB), 0);
  ASSERT_EQ(mapDma(va + 8 * kKiB, 0x20'0000, 8 * kKiB), 0);
  ASSERT_EQ(unmapDma(0x20'0000, 8 * kKiB, kVaddr), 0);
  EXPECT_EQ(unmapDma(0x10'0000, 0x20'0000, kVaddr), -22);
  EXPECT_EQ(mapDma(va, 0x10'0000, 8 * kKiB, kVaddr), -22) << "the first was restored";

  std::shared_ptr<Process> child = proc->fork();
  ASSERT_NE(child, nullptr);
  vfio_iommu_type1_dma_map m{.argsz = sizeof(m),
                             .flags = kVaddr,
                             .vaddr = va + 8 * kKiB,
                             .iova = 0x20'0000,
                             .size = 8 * kKiB};
  ASSERT_EQ(child->ioctl(container, VFIO_IOMMU_MAP_DMA, &m), 0);
  EXPECT_EQ(proc->mm().lockedVm(), 2U);
  EXPECT_EQ(child->mm().lockedVm(), 2U);
}

// With CAP_IPC_LOCK no limit refuses the pins (dma->lock_cap), yet they
// are still charged to locked_vm (__account_locked_vm(..., bypass_rlim)).
TEST_F(Type1Test, DMA_08_CapIpcLockBypassesTheLimitButStillCharges) {
  proc->setCapIpcLock(true);
  const auto va = static_cast<uint64_t>(anon(128 * kKiB));
  const size_t logLines = kernel->machine().log().lines().size();
  ASSERT_EQ(mapDma(va, 0x10'0000, 128 * kKiB), 0) << "32 pages past a limit of 16";
  EXPECT_EQ(proc->mm().lockedVm(), 32U);
  EXPECT_EQ(kernel->machine().log().lines().size(), logLines) << "no RLIMIT warning";
  ASSERT_EQ(unmapDma(0x10'0000, 128 * kKiB), 0);
  EXPECT_EQ(proc->mm().lockedVm(), 0U);

  proc->setCapIpcLock(false);
  EXPECT_EQ(mapDma(va, 0x10'0000, 128 * kKiB), -12) << "capable() is asked at each map";
}

// vfio_change_dma_owner() checks the new owner's limit unless it has
// CAP_IPC_LOCK. A forked child inherits the parent's RLIMIT_MEMLOCK and
// capabilities.
TEST_F(Type1Test, DMA_01_UpdateVaddrChecksTheNewOwnersCapIpcLock) {
  constexpr uint32_t kVaddr = VFIO_DMA_MAP_FLAG_VADDR;
  proc->setCapIpcLock(true);
  const auto va = static_cast<uint64_t>(anon(128 * kKiB));
  ASSERT_EQ(mapDma(va, 0x10'0000, 128 * kKiB), 0);
  ASSERT_EQ(unmapDma(0x10'0000, 128 * kKiB, kVaddr), 0);
  vfio_iommu_type1_dma_map m{
      .argsz = sizeof(m), .flags = kVaddr, .vaddr = va, .iova = 0x10'0000, .size = 128 * kKiB};

  std::shared_ptr<Process> uncapable = proc->fork();
  ASSERT_NE(uncapable, nullptr);
  uncapable->setCapIpcLock(false);
  EXPECT_EQ(uncapable->ioctl(container, VFIO_IOMMU_MAP_DMA, &m), -12)
      << "32 pages past the 16 the inherited limit allows";
  EXPECT_EQ(proc->mm().lockedVm(), 32U) << "the charge stays";

  std::shared_ptr<Process> child = proc->fork();
  ASSERT_NE(child, nullptr);
  ASSERT_EQ(child->ioctl(container, VFIO_IOMMU_MAP_DMA, &m), 0) << "CAP_IPC_LOCK inherited";
  EXPECT_EQ(proc->mm().lockedVm(), 0U);
  EXPECT_EQ(child->mm().lockedVm(), 32U);
}

// type1's pins are the mm's locked_vm, which MAP_LOCKED's limit counts
// too (mlock_future_ok()).
TEST_F(Type1Test, DMA_08_PinnedPagesLeaveNoRoomForMapLocked) {
  const auto va = static_cast<uint64_t>(anon(64 * kKiB));
  ASSERT_EQ(mapDma(va, 0x10'0000, 64 * kKiB), 0);
  ASSERT_EQ(proc->mm().lockedVm(), 16U) << "the whole 64 KiB limit";
  EXPECT_EQ(proc->mmap(0, 4 * kKiB, prot::kRead, map::kShared | map::kLocked, fd, 0), -11);
  ASSERT_EQ(unmapDma(0x10'0000, 64 * kKiB), 0);
  EXPECT_GT(proc->mmap(0, 4 * kKiB, prot::kRead, map::kShared | map::kLocked, fd, 0), 0);
}

// mlock()ed memory is locked_vm too, so pinning it for DMA counts its pages
// a second time: a VMM that locks guest RAM needs a limit for both.
TEST_F(Type1Test, DMA_08_MlockedMemoryCountsAgainWhenPinned) {
  const auto va = static_cast<uint64_t>(anon(64 * kKiB));
  ASSERT_EQ(proc->mlock(va, 32 * kKiB), 0);
  EXPECT_EQ(proc->mm().lockedVm(), 8U);
  EXPECT_EQ(mapDma(va, 0x10'0000, 64 * kKiB), -12) << "8 + 16 pages past the 16 allowed";
  EXPECT_EQ(proc->mm().lockedVm(), 8U) << "the refused map gave back what it pinned";
  ASSERT_EQ(mapDma(va, 0x10'0000, 32 * kKiB), 0);
  EXPECT_EQ(proc->mm().lockedVm(), 16U);
}

// The warning prints the limit rounded down to whole pages.
TEST_F(Type1Test, DMA_08_WarningPrintsTheLimitInWholePages) {
  proc->setRlimitMemlock(64 * kKiB + 100);
  const auto va = static_cast<uint64_t>(anon(68 * kKiB));
  EXPECT_EQ(mapDma(va, 0x10'0000, 68 * kKiB), -12);
  EXPECT_EQ(kernel->machine().log().lines().back(),
            "vfio_pin_pages_remote: RLIMIT_MEMLOCK (65536) exceeded");
}

TEST_F(Type1Test, DMA_09_UnmapRulesOfV2) {
  const auto va = static_cast<uint64_t>(anon(16 * kKiB));
  ASSERT_EQ(mapDma(va, 0x10'0000, 8 * kKiB), 0);
  ASSERT_EQ(mapDma(va + 8 * kKiB, 0x20'0000, 8 * kKiB), 0);
  uint64_t removed = 1;
  EXPECT_EQ(unmapDma(0x10'1000, 4 * kKiB, 0, &removed), -22) << "starts inside";
  EXPECT_EQ(unmapDma(0x0F'F000, 8 * kKiB), -22) << "ends inside";
  EXPECT_EQ(unmapDma(0x30'0000, 4 * kKiB, 0, &removed), 0);
  EXPECT_EQ(removed, 0U) << "nothing there";
  EXPECT_EQ(unmapDma(0x10'0000, 0x11'0000, 0, &removed), 0);
  EXPECT_EQ(removed, 16 * kKiB) << "both mappings";
  ASSERT_EQ(mapDma(va, 0x10'0000, 8 * kKiB), 0);
  EXPECT_EQ(unmapDma(0x1000, 0, VFIO_DMA_UNMAP_FLAG_ALL), -22);
  EXPECT_EQ(unmapDma(0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &removed), 0);
  EXPECT_EQ(removed, 8 * kKiB);
  EXPECT_EQ(type1().dmaAvail(), 65535U);
}

TEST_F(Type1Test, DMA_09_UnmapStartingInsideIsANoOpInV1) {
  boot(DesignKind::kHugeFault, "", VFIO_TYPE1_IOMMU);
  const auto va = static_cast<uint64_t>(anon(8 * kKiB));
  ASSERT_EQ(mapDma(va, 0x10'0000, 8 * kKiB), 0);
  uint64_t removed = 1;
  EXPECT_EQ(unmapDma(0x10'1000, 4 * kKiB, 0, &removed), 0);
  EXPECT_EQ(removed, 0U);
  EXPECT_EQ(domain().iopteCounts().total(), 2U);
}

TEST_F(Type1Test, DMA_10_BarMappingIsNotPinnedAndTranslatesToTheBar) {
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va0, 0);
  ASSERT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), 0);
  EXPECT_EQ(proc->mm().lockedVm(), 0U);
  for (uint64_t k = 0; k < 16; ++k)
    EXPECT_EQ(domain().iovaToPhys(0x10'0000 + k * 4 * kKiB),
              PhysAddr(kStandardBar0Start + k * 4 * kKiB));
  EXPECT_EQ(domain().mapCalls(), 1U);
  EXPECT_EQ(domain().iopteCounts().size4K, 16U);
  EXPECT_EQ(domain().iopteCounts().total(), 16U);
  EXPECT_EQ(type1().dmaAvail(), 65534U);
}

TEST_F(Type1Test, DMA_11_IoptesOfABarDependOnIovaAlignmentOnly) {
  ASSERT_EQ(mmapBar(kBar2Offset, 2 * kGiB, prot::kRead | prot::kWrite, kAlignedVa),
            static_cast<long>(kAlignedVa));
  ASSERT_EQ(mapDma(kAlignedVa, 0x1'0000'0000, 2 * kGiB), 0);
  EXPECT_EQ(domain().mapCalls(), 1U);
  EXPECT_EQ(domain().iopteCounts().size1G, 2U);
  EXPECT_EQ(domain().iopteCounts().total(), 2U);
  ASSERT_EQ(unmapDma(0x1'0000'0000, 2 * kGiB), 0);
  ASSERT_EQ(mapDma(kAlignedVa, 0x1'0020'0000, 2 * kGiB), 0);
  EXPECT_EQ(domain().iopteCounts().size2M, 1024U);
  EXPECT_EQ(domain().iopteCounts().total(), 1024U);
}

// disable_hugepages: every chunk is one page, one iommu_map() of 4 KiB each.
TEST_F(Type1Test, DMA_11_DisableHugepagesMapsEveryPageOnItsOwn) {
  boot(DesignKind::kHugeFault, "", VFIO_TYPE1v2_IOMMU, std::nullopt,
       Type1Params{.disableHugepages = true});
  ASSERT_EQ(mmapBar(kBar2Offset, 2 * kGiB, prot::kRead | prot::kWrite, kAlignedVa),
            static_cast<long>(kAlignedVa));
  ASSERT_EQ(mapDma(kAlignedVa, 0x1'0000'0000, 2 * kGiB), 0);
  EXPECT_EQ(domain().mapCalls(), 524'288U);
  EXPECT_EQ(domain().iopteCounts().size4K, 524'288U);
  EXPECT_EQ(domain().iopteCounts().total(), 524'288U);
}

// A second device in its own group, set to the same container: a peer
// whose DMA goes through the container's domain.
PciDevice& addPeer(Kernel& kernel, Process& p, int container, uint8_t bus, PciDeviceConfig config) {
  VfioDevice* peer = *kernel.addVfioDevice(kernel.addBus(bus), std::move(config));
  int c = container;
  const long g = p.open(kernel.groupPath(*peer), O_RDWR);
  EXPECT_EQ(p.ioctl(static_cast<int>(g), VFIO_GROUP_SET_CONTAINER, &c), 0);
  return peer->pci().pdev();
}

// A gtest parameter name from design and profile names.
std::string testName(std::string name) {
  for (char& c : name)
    if (c == '-' || c == '.') c = '_';
  return name;
}

struct FaultRow {
  DesignKind design;
  const char* profile;
  uint64_t hFaults, hCalls, bar0Faults, bar0Calls;
};

class Type1FaultTable : public Type1Test, public ::testing::WithParamInterface<FaultRow> {
 protected:
  void SetUp() override { boot(GetParam().design, GetParam().profile); }
};

// dma-mapping.md §2.2: an unpopulated mapping is faulted in by MAP_DMA
// through the design's own fault handler.
TEST_P(Type1FaultTable, DMA_12_FaultsAndLookupsOfAnUnpopulatedMap) {
  const FaultRow row = GetParam();
  ASSERT_EQ(mmapBar(kBar2Offset, 2 * kGiB, prot::kRead | prot::kWrite, kAlignedVa),
            static_cast<long>(kAlignedVa));
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va0, 0);
  const uint64_t majBefore = proc->getrusage().ru_majflt;
  ASSERT_EQ(mapDma(kAlignedVa, 0x1'0000'0000, 2 * kGiB), 0);
  EXPECT_EQ(type1().stats().faults, row.hFaults);
  EXPECT_EQ(type1().stats().vaddrGetPfnsCalls, row.hCalls);
  const Type1Stats before = type1().stats();
  ASSERT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), 0);
  EXPECT_EQ(type1().stats().faults - before.faults, row.bar0Faults);
  EXPECT_EQ(type1().stats().vaddrGetPfnsCalls - before.vaddrGetPfnsCalls, row.bar0Calls);
  EXPECT_EQ(proc->getrusage().ru_majflt, majBefore);
}

INSTANTIATE_TEST_SUITE_P(
    Generations, Type1FaultTable,
    ::testing::Values(FaultRow{DesignKind::kVmaList, "linux-6.9", 1, 524'288, 1, 16},
                      FaultRow{DesignKind::kAddressSpace, "linux-6.10", 524'288, 524'288, 16, 16},
                      FaultRow{DesignKind::kFillVma, "linux-6.10", 1, 524'288, 1, 16},
                      FaultRow{DesignKind::kHugeFault, "linux-6.12", 2, 524'288, 16, 16},
                      FaultRow{DesignKind::kHugeFault, "linux-6.15", 2, 2, 16, 16}),
    [](const ::testing::TestParamInfo<FaultRow>& p) {
      return testName(std::string(designName(p.param.design)) + "_" + p.param.profile);
    });

TEST_F(Type1Test, DMA_13_MapOfADecodeDisabledBarIsEfault) {
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va0, 0);
  setMemory(false);
  const CounterSnapshot before = CounterSet::current().snapshot();
  const uint64_t minBefore = proc->getrusage().ru_minflt;
  EXPECT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), -14);
  EXPECT_EQ(domain().iopteCounts().total(), 0U);
  EXPECT_EQ(type1().dmaAvail(), 65535U);
  EXPECT_EQ(CounterSet::current().snapshot().since(before).get("vmstat.pgfault"), 1U);
  EXPECT_EQ(proc->getrusage().ru_minflt, minBefore);
}

TEST_F(Type1Test, DMA_14_IoptesSurviveTheZapAndPeerDmaIsInvariant7) {
  PciDevice& peer = addPeer(*kernel, *proc, container, 0x20, standardDeviceConfig(0x20));
  InvariantMonitor monitor(*kernel);
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va0, 0);
  ASSERT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), 0);
  ASSERT_TRUE(kernel->iommu().dmaWrite(peer, 0x10'0000, 4, 1));
  EXPECT_EQ(kernel->iommu().dmaDecodeViolationCount(), 0U);

  setMemory(false);
  EXPECT_EQ(proc->thread().load(static_cast<uint64_t>(va0)).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(domain().iovaToPhys(0x10'0000), PhysAddr(kStandardBar0Start));
  ASSERT_TRUE(kernel->iommu().dmaWrite(peer, 0x10'0040, 4, 2));
  ASSERT_EQ(kernel->iommu().dmaDecodeViolationCount(), 1U);
  const DmaDecodeViolation v = kernel->iommu().dmaDecodeViolations().at(0);
  EXPECT_EQ(v.device, peer.name());
  EXPECT_EQ(v.iova, 0x10'0040U);
  EXPECT_TRUE(v.isWrite);
  EXPECT_EQ(monitor.counts().dmaDecodeViolations, 1U);
  EXPECT_EQ(monitor.counts().decodeViolations, 0U) << "no CPU access reached the BAR";

  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_RESET, nullptr), 0);
  EXPECT_EQ(domain().iovaToPhys(0x10'0000), PhysAddr(kStandardBar0Start)) << "reset: still there";
  uint64_t removed = 0;
  ASSERT_EQ(unmapDma(0x10'0000, 64 * kKiB, 0, &removed), 0);
  EXPECT_EQ(removed, 64 * kKiB);
}

TEST_F(Type1Test, DMA_15_MunmapAndCloseLeaveTheIoptes) {
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va0, 0);
  ASSERT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), 0);
  ASSERT_EQ(proc->munmap(static_cast<uint64_t>(va0), 64 * kKiB), 0);
  EXPECT_EQ(domain().iopteCounts().size4K, 16U);
  ASSERT_EQ(proc->close(fd), 0);
  EXPECT_EQ(domain().iopteCounts().size4K, 16U);
  EXPECT_EQ(domain().iovaToPhys(0x10'F000), PhysAddr(kStandardBar0Start + 0xF000));
  uint64_t removed = 0;
  ASSERT_EQ(unmapDma(0x10'0000, 64 * kKiB, 0, &removed), 0);
  EXPECT_EQ(removed, 64 * kKiB);
  EXPECT_EQ(domain().iopteCounts().total(), 0U);
}

TEST_F(Type1Test, DMA_17_ReadOnlyBarMappingMapsReadOnly) {
  PciDevice& peer = addPeer(*kernel, *proc, container, 0x20, standardDeviceConfig(0x20));
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB, prot::kRead);
  ASSERT_GT(va0, 0);
  EXPECT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), -14);
  EXPECT_EQ(domain().iopteCounts().total(), 0U);
  ASSERT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB, VFIO_DMA_MAP_FLAG_READ), 0);
  EXPECT_TRUE(kernel->iommu().dmaRead(peer, 0x10'0000, 4).has_value());
  EXPECT_EQ(kernel->iommu().dmaWrite(peer, 0x10'0000, 4, 1).error(), Errno::kEIO);
}

// fixup_user_fault()'s vma_permits_fault() wants VM_READ for a read,
// where the CPU's access_error() lets a write-only mapping read: a READ
// MAP_DMA of an unpopulated PROT_WRITE mapping is -EFAULT.
TEST_F(Type1Test, DMA_17_WriteOnlyBarMappingCannotBeFaultedForRead) {
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB, prot::kWrite);
  ASSERT_GT(va0, 0);
  EXPECT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB, VFIO_DMA_MAP_FLAG_READ), -14);
  EXPECT_EQ(domain().iopteCounts().total(), 0U);
}

struct PopulatedRow {
  const char* profile;
  uint64_t hCalls;
};

class Type1Populated : public Type1Test, public ::testing::WithParamInterface<PopulatedRow> {
 protected:
  void SetUp() override { boot(DesignKind::kHugeFault, GetParam().profile); }
};

TEST_P(Type1Populated, DMA_18_LookupsOfAPopulatedMapFollowTheEra) {
  ASSERT_EQ(mmapBar(kBar2Offset, 2 * kGiB, prot::kRead | prot::kWrite, kAlignedVa),
            static_cast<long>(kAlignedVa));
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va0, 0);
  for (uint64_t off = 0; off < 2 * kGiB; off += kGiB)
    ASSERT_TRUE(proc->thread().load(kAlignedVa + off).sig.none());
  for (uint64_t off = 0; off < 64 * kKiB; off += 4 * kKiB)
    ASSERT_TRUE(proc->thread().load(static_cast<uint64_t>(va0) + off).sig.none());
  ASSERT_EQ(mapDma(kAlignedVa, 0x1'0000'0000, 2 * kGiB), 0);
  EXPECT_EQ(type1().stats().vaddrGetPfnsCalls, GetParam().hCalls);
  EXPECT_EQ(type1().stats().faults, 0U);
  ASSERT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), 0);
  EXPECT_EQ(type1().stats().vaddrGetPfnsCalls, GetParam().hCalls + 16);
}

INSTANTIATE_TEST_SUITE_P(Eras, Type1Populated,
                         ::testing::Values(PopulatedRow{"linux-6.12", 524'288},
                                           PopulatedRow{"linux-6.15", 2}),
                         [](const ::testing::TestParamInfo<PopulatedRow>& p) {
                           return testName(p.param.profile);
                         });

// The headline numbers: a 32 GiB BAR mmapped at a 1 GiB aligned
// address and DMA-mapped takes 8,388,608 lookups of 4 KiB on 6.12 and one
// per 1 GiB leaf on 6.15 (0fd06844de5d: "8M page sized operations reduced
// to 32 pud sized operations").
TEST_P(Type1Populated, DMA_18_A32GiBBarIs8MLookupsOn612And32On615) {
  PciDeviceConfig big = standardDeviceConfig(0x30);
  big.bars[2] = BarSpec{32 * kGiB, BarKind::kMem64, true};
  VfioDevice* gpu = *kernel->addVfioDevice(kernel->addBus(0x30), big);
  const long g = proc->open(kernel->groupPath(*gpu), O_RDWR);
  ASSERT_EQ(proc->ioctl(static_cast<int>(g), VFIO_GROUP_SET_CONTAINER, &container), 0);
  const long gfd = proc->ioctl(static_cast<int>(g), VFIO_GROUP_GET_DEVICE_FD,
                               const_cast<char*>(gpu->name().c_str()));
  ASSERT_GE(gfd, 0);
  uint32_t cmd = kPciCommandMemory;
  ASSERT_EQ(proc->pwrite(static_cast<int>(gfd), &cmd, 2, kConfigOffset + kPciCommand), 2);
  ASSERT_EQ(proc->mmap(kAlignedVa, 32 * kGiB, prot::kRead | prot::kWrite,
                       map::kShared | map::kFixed, static_cast<int>(gfd), kBar2Offset),
            static_cast<long>(kAlignedVa));
  ASSERT_EQ(mapDma(kAlignedVa, 0x100'0000'0000, 32 * kGiB), 0);
  const bool p4 = GetParam().hCalls == 2;
  EXPECT_EQ(type1().stats().vaddrGetPfnsCalls, p4 ? 32U : 8'388'608U);
  EXPECT_EQ(type1().stats().faults, 32U) << "one PUD fault per 1 GiB";
  EXPECT_EQ(domain().mapCalls(), 1U);
  EXPECT_EQ(domain().iopteCounts().size1G, 32U);
}

// Counts the model's named scheduling points of one name.
class SchedPointCounter : public SchedHook {
 public:
  explicit SchedPointCounter(std::string_view name) : name_(name) {}
  void schedPoint(std::string_view what) override {
    if (what == name_) count_.fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  const std::string_view name_;
  std::atomic<uint64_t> count_{0};
};

class Type1Resched : public Type1Test, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    KernelProfile p = *KernelProfile::byName("linux-6.15");
    p.vfio.type1Resched = GetParam();
    boot(DesignKind::kHugeFault, "", VFIO_TYPE1v2_IOMMU, p);
  }
};

// dma-mapping.md §2.8: H faulted in 4 KiB at a time (MADV_NOHUGEPAGE) is
// 524,288 lookups; only from v6.17 does each give the scheduler a turn.
TEST_P(Type1Resched, DMA_19_SchedulingPointsOfA4KiBFaultedMap) {
  ASSERT_EQ(mmapBar(kBar2Offset, 2 * kGiB, prot::kRead | prot::kWrite, kAlignedVa),
            static_cast<long>(kAlignedVa));
  ASSERT_EQ(proc->madvise(kAlignedVa, 2 * kGiB, madv::kNoHugepage), 0);
  SchedPointCounter points("vfio.type1.cond_resched");
  {
    testing::InstalledHook installed(points);
    ASSERT_EQ(mapDma(kAlignedVa, 0x1'0000'0000, 2 * kGiB), 0);
  }
  const uint64_t expected = GetParam() ? 524'288U : 0U;
  EXPECT_EQ(type1().stats().vaddrGetPfnsCalls, 524'288U);
  EXPECT_EQ(type1().stats().faults, 524'288U);
  EXPECT_EQ(type1().stats().condResched, expected);
  EXPECT_EQ(points.count(), expected);
}

INSTANTIATE_TEST_SUITE_P(Eras, Type1Resched, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return std::string(p.param ? "from_6_17" : "before_6_17");
                         });

TEST_F(Type1Test, DMA_21_UnmapWalksEveryPageWithIovaToPhys) {
  ASSERT_EQ(mmapBar(kBar2Offset, 2 * kGiB, prot::kRead | prot::kWrite, kAlignedVa),
            static_cast<long>(kAlignedVa));
  ASSERT_EQ(mapDma(kAlignedVa, 0x1'0000'0000, 2 * kGiB), 0);
  const uint64_t before = domain().iovaToPhysCalls();
  uint64_t removed = 0;
  ASSERT_EQ(unmapDma(0x1'0000'0000, 2 * kGiB, 0, &removed), 0);
  EXPECT_EQ(removed, 2 * kGiB);
  EXPECT_EQ(domain().iovaToPhysCalls() - before, 524'288U);
  EXPECT_EQ(proc->mm().lockedVm(), 0U);
  EXPECT_EQ(domain().iopteCounts().total(), 0U);
}

// A PFNMAP VMA whose pfns are ordinary RAM (a driver other than vfio-pci
// remapping kernel memory): the pfns have non-reserved struct pages.
TEST_F(Type1Test, DMA_20_PfnmapOverRamIsRefused) {
  auto file = std::make_shared<testing::FakeBarFile>(PhysAddr(SystemRam::kBase), 64 * kKiB, false);
  auto va =
      proc->mm().mmap(VirtAddr(0), 64 * kKiB, prot::kRead | prot::kWrite, map::kShared, file, 0);
  ASSERT_TRUE(va);
  EXPECT_EQ(mapDma(va->value(), 0x10'0000, 64 * kKiB), -14);
  // The fault itself succeeded: what refused the pfn is its struct page.
  EXPECT_EQ(type1().stats().faults, 1U);
  EXPECT_TRUE(proc->mm().pageTable().translate(*va).present);
  EXPECT_EQ(domain().iopteCounts().total(), 0U);
  EXPECT_EQ(type1().dmaAvail(), 65535U);
}

// MEM=0 landing between any two lookups of a MAP_DMA: the memory lock is held
// only inside each fault, so the map either resolved every page while memory
// was on or fails and leaves nothing (dma-mapping.md §2.3). The MEM=0 write
// runs on the mapping thread just before its n-th mmap-lock acquisition.
TEST_F(Type1Test, DMA_16_MapRacingMemOffIsAllOrNothing) {
  int succeeded = 0;
  int failed = 0;
  const uint64_t lockdepBefore = lockdep::reportCount();
  for (int n = 1; n <= 64; ++n) {
    boot(DesignKind::kHugeFault);
    const long va0 = mmapBar(kBar0Offset, 64 * kKiB);
    ASSERT_GT(va0, 0);
    testing::LineUp lineUp;
    lineUp.on(0, testing::LineUp::Event::kBeforeAcquire, &proc->mm().mmapLock(), n,
              [this] { setMemory(false); });
    long rc = 0;
    {
      testing::InstalledHook installed(lineUp);
      rc = mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB);
    }
    if (rc == 0) {
      ++succeeded;
      EXPECT_EQ(domain().iopteCounts().size4K, 16U) << "n=" << n;
    } else {
      ++failed;
      EXPECT_EQ(rc, -14) << "n=" << n;
      EXPECT_EQ(domain().iopteCounts().total(), 0U) << "n=" << n;
      EXPECT_EQ(type1().dmaAvail(), 65535U) << "n=" << n;
    }
  }
  EXPECT_GT(succeeded, 0);
  EXPECT_GT(failed, 0);
  EXPECT_EQ(lockdep::reportCount(), lockdepBefore) << "iommu->lock -> mmap_lock -> memory_lock";
}

TEST_F(Type1Test, DMA_13_MapInD3hotIsEfault) {
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va0, 0);
  setPowerState(3);
  EXPECT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), -14);
  EXPECT_EQ(domain().iopteCounts().total(), 0U);
  setPowerState(0);
  EXPECT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), 0) << "back in D0";
}

TEST_F(Type1Test, DMA_14_IoptesSurviveD3hot) {
  PciDevice& peer = addPeer(*kernel, *proc, container, 0x20, standardDeviceConfig(0x20));
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va0, 0);
  ASSERT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), 0);
  setPowerState(3);
  EXPECT_EQ(proc->thread().load(static_cast<uint64_t>(va0)).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(domain().iopteCounts().size4K, 16U);
  EXPECT_EQ(*kernel->iommu().dmaRead(peer, 0x10'8000, 4), 0xFFFF'FFFFU);
  EXPECT_EQ(kernel->iommu().dmaDecodeViolationCount(), 1U);
}

// LOW_POWER_ENTRY on the device: zapped, pm_runtime_engaged, and (runtime
// PM allowed, as vfio-pci leaves it) suspended to D3hot at the ioctl's end.
long enterLowPower(Process& proc, int deviceFd) {
  vfio_device_feature entry{.argsz = sizeof(vfio_device_feature)};
  entry.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY;
  return proc.ioctl(deviceFd, VFIO_DEVICE_FEATURE, &entry);
}

// MAP_DMA is a container ioctl: it does not resume the device, and its
// fault refuses a device in user-requested low power.
TEST_F(Type1Test, DMA_13_MapInLowPowerIsEfault) {
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va0, 0);
  ASSERT_EQ(enterLowPower(*proc, fd), 0);
  EXPECT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), -14);
  EXPECT_EQ(domain().iopteCounts().total(), 0U);
  EXPECT_EQ(type1().dmaAvail(), 65535U);
}

TEST_F(Type1Test, DMA_14_IoptesSurviveLowPower) {
  PciDevice& peer = addPeer(*kernel, *proc, container, 0x20, standardDeviceConfig(0x20));
  const long va0 = mmapBar(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va0, 0);
  ASSERT_EQ(mapDma(static_cast<uint64_t>(va0), 0x10'0000, 64 * kKiB), 0);
  ASSERT_EQ(enterLowPower(*proc, fd), 0);
  EXPECT_EQ(proc->thread().load(static_cast<uint64_t>(va0)).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(domain().iopteCounts().size4K, 16U) << "the zap never reaches the IOMMU";
  EXPECT_EQ(*kernel->iommu().dmaRead(peer, 0x10'8000, 4), 0xFFFF'FFFFU) << "suspended to D3hot";
  EXPECT_EQ(kernel->iommu().dmaDecodeViolationCount(), 1U);
}

// A pinned anonymous page outlives its mapping (why virtio-balloon and vfio
// do not mix): MADV_DONTNEED or munmap frees the page from the mm, but the
// IOMMU keeps the frame it pinned, contents and all, while a new pin of the
// address gets a fresh page; MADV_FREE frees nothing a pin holds. mremap
// moves the pages with the address.
TEST_F(Type1Test, APinnedAnonymousPageOutlivesItsMapping) {
  Iommu& iommu = kernel->iommu();
  const auto read = [&](uint64_t iova) {
    return iommu.dmaRead(pdev(), iova, 4).value_or(~uint64_t{0});
  };
  const auto buf = static_cast<uint64_t>(anon(8 * kKiB));
  ASSERT_EQ(mapDma(buf, 0x10'0000, 8 * kKiB), 0);
  for (uint64_t iova : {uint64_t{0x10'0000}, uint64_t{0x10'1000}})
    ASSERT_TRUE(iommu.dmaWrite(pdev(), iova, 4, 0x5a5a'5a5aU));
  EXPECT_EQ(proc->madvise(buf, 4096, madv::kDontNeed), 0);
  ASSERT_EQ(mapDma(buf, 0x20'0000, 8 * kKiB), 0);
  EXPECT_EQ(read(0x20'0000), 0U) << "the page MADV_DONTNEED freed is a fresh one";
  EXPECT_EQ(read(0x20'1000), 0x5a5a'5a5aU) << "the page after it stayed";
  EXPECT_EQ(read(0x10'0000), 0x5a5a'5a5aU) << "the IOMMU keeps the frame it pinned";
  EXPECT_EQ(proc->madvise(buf + 4096, 4096, madv::kFree), 0);
  ASSERT_EQ(mapDma(buf, 0x28'0000, 8 * kKiB), 0);
  EXPECT_EQ(read(0x28'1000), 0x5a5a'5a5aU) << "MADV_FREE leaves a pinned page to reclaim";

  ASSERT_EQ(proc->munmap(buf, 8 * kKiB), 0);
  ASSERT_EQ(proc->mmap(buf, 8 * kKiB, prot::kRead | prot::kWrite,
                       map::kPrivate | map::kAnonymous | map::kFixed, -1, 0),
            static_cast<long>(buf));
  ASSERT_EQ(mapDma(buf, 0x30'0000, 8 * kKiB), 0);
  EXPECT_EQ(read(0x30'1000), 0U) << "a new mapping at the old address has new pages";

  const auto moving = static_cast<uint64_t>(anon(8 * kKiB));
  ASSERT_EQ(mapDma(moving, 0x40'0000, 8 * kKiB), 0);
  ASSERT_TRUE(iommu.dmaWrite(pdev(), 0x40'1000, 4, 0x77U));
  const long moved = proc->mremap(moving, 8 * kKiB, 16 * kKiB, mremap::kMayMove);
  ASSERT_GT(moved, 0);
  ASSERT_NE(static_cast<uint64_t>(moved), moving);
  ASSERT_EQ(mapDma(static_cast<uint64_t>(moved), 0x50'0000, 16 * kKiB), 0);
  EXPECT_EQ(read(0x50'1000), 0x77U) << "the page moved with mremap";
  EXPECT_EQ(read(0x50'2000), 0U) << "the grown part is new";
}

}  // namespace
}  // namespace vfiomm
