// Native iommufd (dma-mapping.md §3.1, §3.2; conformance IDs IOMMUFD-xx of
// §8): a process with /dev/iommu open and one IOAS; Standard device D is
// there for the tests that attach it.
#include "abi/iommufd.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "abi/vfio.h"
#include "base/byte_units.h"
#include "iommu/iommu.h"
#include "kernel/kernel.h"
#include "kernel/kernel_profile.h"
#include "lock_order.h"
#include "mm/mm.h"
#include "mm/user_struct.h"
#include "mm/vm_flags.h"
#include "pci/pci_regs.h"
#include "pci/standard_device.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_device.h"

namespace vfiomm {
namespace {

using namespace vfiomm::uapi;

constexpr uint32_t kRw = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
constexpr uint32_t kFixedRw = IOMMU_IOAS_MAP_FIXED_IOVA | kRw;
constexpr uint64_t kU64Max = ~uint64_t{0};

class IommufdTest : public ::testing::Test {
 protected:
  // Every nesting the test made is in docs/architecture.md's lock order
  // (vma-list's inversions are the bug it shows).
  void TearDown() override {
    if (kernel == nullptr || kernel->config().design == DesignKind::kVmaList) return;
    const KernelContext::Scope in(kernel->context());
    EXPECT_EQ(testing::DocumentedLockOrder().undocumented(), std::vector<std::string>{});
  }
  void SetUp() override {
    kernel = *Kernel::create(KernelConfig{});
    dev = &kernel->addStandardDevice();
    proc = Process::spawn(*kernel, "qemu");
    iommufd = static_cast<int>(proc->open("/dev/iommu", O_RDWR));
    ASSERT_GE(iommufd, 0);
    ioas = allocIoas();
    ASSERT_NE(ioas, 0U);
  }

  uint32_t allocIoas() {
    iommu_ioas_alloc a{.size = sizeof(a)};
    EXPECT_EQ(proc->ioctl(iommufd, IOMMU_IOAS_ALLOC, &a), 0);
    return a.out_ioas_id;
  }
  // Returns the ioctl's result; `*iova` is passed in and gets the IOVA
  // written back.
  long ioasMap(uint64_t va, uint64_t length, uint64_t* iova, uint32_t flags = kFixedRw,
               uint32_t reserved = 0, uint32_t id = 0) {
    iommu_ioas_map m{.size = sizeof(m),
                     .flags = flags,
                     .ioas_id = id != 0 ? id : ioas,
                     .__reserved = reserved,
                     .user_va = va,
                     .length = length,
                     .iova = *iova};
    const long r = proc->ioctl(iommufd, IOMMU_IOAS_MAP, &m);
    *iova = m.iova;
    return r;
  }
  long mapAt(uint64_t va, uint64_t length, uint64_t iova, uint32_t flags = kFixedRw) {
    return ioasMap(va, length, &iova, flags);
  }
  // Returns the ioctl's result; `*removed` gets the length written back.
  long ioasUnmap(uint64_t iova, uint64_t length, uint64_t* removed = nullptr) {
    iommu_ioas_unmap u{.size = sizeof(u), .ioas_id = ioas, .iova = iova, .length = length};
    const long r = proc->ioctl(iommufd, IOMMU_IOAS_UNMAP, &u);
    if (removed != nullptr) *removed = u.length;
    return r;
  }
  // D's cdev, bound to the iommufd.
  int bindDevice() {
    const int fd = static_cast<int>(proc->open(kernel->cdevPath(*dev), O_RDWR));
    EXPECT_GE(fd, 0);
    vfio_device_bind_iommufd bind{.argsz = sizeof(bind), .iommufd = iommufd};
    EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind), 0);
    return fd;
  }
  long attach(int fd, uint32_t ptId) {
    vfio_device_attach_iommufd_pt a{.argsz = sizeof(a), .pt_id = ptId};
    return proc->ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
  }
  // BAR0 of D through the cdev: VA0.
  uint64_t mmapBar0(int fd) {
    return static_cast<uint64_t>(
        proc->mmap(0, 64 * kKiB, prot::kRead | prot::kWrite, map::kShared, fd, 0));
  }
  // Whether D's DMA at `iova` gets through the IOMMU.
  bool dmaReaches(uint64_t iova) {
    return kernel->iommu().dmaRead(dev->pdev(), iova, 4).has_value();
  }
  uint64_t anon(uint64_t len) {
    return static_cast<uint64_t>(
        proc->mmap(0, len, prot::kRead | prot::kWrite, map::kPrivate | map::kAnonymous, -1, 0));
  }

  std::unique_ptr<Kernel> kernel;
  VfioDevice* dev = nullptr;
  std::shared_ptr<Process> proc;
  int iommufd = -1;
  uint32_t ioas = 0;
};

TEST_F(IommufdTest, IOMMUFD_01_IoasMapChecksInOrder) {
  const uint64_t va = anon(64 * kKiB);
  EXPECT_EQ(mapAt(va, 0, 0x10'0000, kFixedRw | (1U << 3)), -95) << "unknown flag before length 0";
  uint64_t iova = 0x10'0000;
  EXPECT_EQ(ioasMap(va, 8 * kKiB, &iova, kFixedRw, 1), -95) << "__reserved";
  EXPECT_EQ(mapAt(va, 8 * kKiB, kU64Max), -75) << "iova at ULONG_MAX";
  iova = 0x10'0000;
  EXPECT_EQ(ioasMap(va, 8 * kKiB, &iova, IOMMU_IOAS_MAP_FIXED_IOVA, 0, 999), -22)
      << "neither R nor W, checked before the IOAS lookup";
  EXPECT_EQ(ioasMap(va, 8 * kKiB, &iova, kFixedRw, 0, 999), -2) << "no such IOAS";
  EXPECT_EQ(mapAt(va, 0, 0x10'0000), -22) << "length 0";
  EXPECT_EQ(mapAt(va, 6 * kKiB, 0x10'0000), -22) << "length not aligned";
  EXPECT_EQ(mapAt(va, 8 * kKiB, 0x10'0800), -22) << "iova not aligned";
  EXPECT_EQ(mapAt(va, 8 * kKiB, 0xFFFF'FFFF'FFFF'F000), -75) << "wrap before the reserved check";
  EXPECT_EQ(mapAt(va, 8 * kKiB, 0xFEE0'0000), -22) << "MSI window";
  EXPECT_EQ(mapAt(va, 8 * kKiB, 0xFEDF'F000), -22) << "running into the MSI window";

  ASSERT_EQ(mapAt(va, 8 * kKiB, 0x10'0000), 0);
  EXPECT_EQ(mapAt(va, 4 * kKiB, 0x10'1000), -17) << "inside the area";
  EXPECT_EQ(mapAt(va, 8 * kKiB, 0x0F'F000), -17) << "running into the area";

  iova = 0xDEAD'0000;  // ignored without FIXED_IOVA
  ASSERT_EQ(ioasMap(va + 8 * kKiB, 16 * kKiB, &iova, kRw), 0);
  EXPECT_NE(iova, 0xDEAD'0000U) << "the chosen IOVA is written back";
  EXPECT_EQ(mapAt(va, 4 * kKiB, iova + 12 * kKiB), -17) << "the chosen IOVA is taken";
  uint64_t removed = 0;
  EXPECT_EQ(ioasUnmap(iova, 16 * kKiB, &removed), 0);
  EXPECT_EQ(removed, 16 * kKiB);
}

TEST_F(IommufdTest, IOMMUFD_02_IoasUnmapEmptyOrPartlyCoveredIsEnoent) {
  const uint64_t va = anon(16 * kKiB);
  ASSERT_EQ(mapAt(va, 8 * kKiB, 0x10'0000), 0);
  ASSERT_EQ(mapAt(va + 8 * kKiB, 8 * kKiB, 0x20'0000), 0);
  uint64_t removed = 1;
  EXPECT_EQ(ioasUnmap(0x30'0000, 4 * kKiB, &removed), -2) << "empty";
  EXPECT_EQ(ioasUnmap(0x10'1000, 4 * kKiB), -2) << "starts inside";
  EXPECT_EQ(ioasUnmap(0x0F'F000, 8 * kKiB), -2) << "ends inside";
  EXPECT_EQ(ioasUnmap(0x10'0000, 0), -22) << "length 0";
  EXPECT_EQ(mapAt(va, 4 * kKiB, 0x10'0000), -17) << "the cut area is still whole";

  EXPECT_EQ(ioasUnmap(0, kU64Max, &removed), 0);
  EXPECT_EQ(removed, 16 * kKiB) << "both areas";
  EXPECT_EQ(ioasUnmap(0x20'0000, 8 * kKiB), -2) << "gone";
  EXPECT_EQ(mapAt(va, 8 * kKiB, 0x10'0000), 0) << "the IOVA is free again";
  EXPECT_EQ(ioasUnmap(0x10'0000, 8 * kKiB), 0);
  EXPECT_EQ(ioasUnmap(0, kU64Max, &removed), 0) << "unmap all of nothing";
  EXPECT_EQ(removed, 0U);
}

TEST_F(IommufdTest, IoasDestroyRemovesTheObject) {
  iommu_destroy d{.size = sizeof(d), .id = ioas};
  EXPECT_EQ(proc->ioctl(iommufd, IOMMU_DESTROY, &d), 0);
  EXPECT_EQ(proc->ioctl(iommufd, IOMMU_DESTROY, &d), -2);
  EXPECT_EQ(mapAt(anon(4 * kKiB), 4 * kKiB, 0x10'0000), -2);
}

TEST_F(IommufdTest, IOMMUFD_03_CdevBindAttachDetach) {
  const int fd = static_cast<int>(proc->open(kernel->cdevPath(*dev), O_RDWR));
  ASSERT_GE(fd, 0);
  vfio_device_info info{.argsz = sizeof(info)};
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, &info), -22) << "before bind";
  EXPECT_EQ(attach(fd, ioas), -22) << "before bind";
  vfio_device_bind_iommufd bind{.argsz = sizeof(bind), .iommufd = -2};
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind), -22) << "negative fd";
  bind.iommufd = 99;
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind), -9) << "no such fd";
  bind.iommufd = static_cast<int32_t>(proc->eventfd(0, 0));
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind), -77) << "not an iommufd";
  bind.iommufd = iommufd;
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind), 0);
  EXPECT_NE(bind.out_devid, 0U);
  EXPECT_NE(bind.out_devid, ioas) << "one id space for every object";
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, &info), 0);
  bind.iommufd = 99;
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind), -22)
      << "second bind, refused before the fd is looked up";

  vfio_device_attach_iommufd_pt shortArg{.argsz = 8, .pt_id = ioas};
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &shortArg), -22);
  vfio_device_attach_iommufd_pt pasid{.argsz = sizeof(pasid), .flags = 1, .pt_id = ioas};
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &pasid), -22);
  EXPECT_EQ(attach(fd, 0xFFFF'FFFF), -2) << "no such object";
  const uint64_t va = anon(4 * kKiB);
  ASSERT_EQ(mapAt(va, 4 * kKiB, 0x10'0000), 0);
  EXPECT_EQ(attach(fd, allocIoas()), 0) << "a fresh IOAS";
  EXPECT_FALSE(dmaReaches(0x10'0000)) << "the fresh IOAS maps nothing";
  EXPECT_EQ(attach(fd, ioas), 0) << "moving over to the first IOAS";
  EXPECT_TRUE(dmaReaches(0x10'0000));
  vfio_device_detach_iommufd_pt detach{.argsz = sizeof(detach)};
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach), 0);
  EXPECT_FALSE(dmaReaches(0x10'0000)) << "detached: DMA is blocked";
}

// iommufd_device_auto_get_domain(): an attach to an IOAS lands on the
// IOAS's automatic paging HWPT, whose id is written back in pt_id; a second
// device attached to the same IOAS shares it (one domain, so one set of
// IOPTEs), and the HWPT lives while a device is on it. Attaching by the
// HWPT's id works too (dma-mapping.md §3.1: "attaches to an IOAS (auto
// domain) or HWPT; pt_id written back").
TEST_F(IommufdTest, IOMMUFD_03_AttachWritesBackTheSharedAutomaticHwpt) {
  const int fd = bindDevice();
  vfio_device_attach_iommufd_pt a{.argsz = sizeof(a), .pt_id = ioas};
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), 0);
  const uint32_t hwpt = a.pt_id;
  EXPECT_NE(hwpt, ioas);
  EXPECT_NE(hwpt, 0U);

  PciBus& bus = kernel->addBus(0x20);
  VfioDevice& e = **kernel->addVfioDevice(bus, standardDeviceConfig(bus.number()));
  const int efd = static_cast<int>(proc->open(kernel->cdevPath(e), O_RDWR));
  vfio_device_bind_iommufd bind{.argsz = sizeof(bind), .iommufd = iommufd};
  ASSERT_EQ(proc->ioctl(efd, VFIO_DEVICE_BIND_IOMMUFD, &bind), 0);
  vfio_device_attach_iommufd_pt b{.argsz = 12, .pt_id = ioas};  // the first version's size
  ASSERT_EQ(proc->ioctl(efd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &b), 0);
  EXPECT_EQ(b.pt_id, hwpt);
  EXPECT_EQ(kernel->iommu().domainFor(dev->pdev()), kernel->iommu().domainFor(e.pdev()));
  const uint64_t va = anon(2048 * kKiB);
  ASSERT_EQ(mapAt(va, 2048 * kKiB, 0x20'0000), 0);
  EXPECT_TRUE(dmaReaches(0x20'0000));
  EXPECT_TRUE(kernel->iommu().dmaRead(e.pdev(), 0x20'0000, 4).has_value());

  iommu_destroy destroy{.size = sizeof(destroy), .id = hwpt};
  EXPECT_EQ(proc->ioctl(iommufd, IOMMU_DESTROY, &destroy), -16) << "devices are on it";
  vfio_device_detach_iommufd_pt detach{.argsz = sizeof(detach)};
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach), 0);
  EXPECT_TRUE(kernel->iommu().dmaRead(e.pdev(), 0x20'0000, 4).has_value()) << "E stays";
  a.pt_id = hwpt;
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), 0) << "by the HWPT's id";
  EXPECT_EQ(a.pt_id, hwpt);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach), 0);
  ASSERT_EQ(proc->ioctl(efd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach), 0);
  EXPECT_EQ(proc->ioctl(iommufd, IOMMU_DESTROY, &destroy), -2) << "gone with the last device";
  EXPECT_EQ(attach(fd, hwpt), -2);
}

TEST_F(IommufdTest, IOMMUFD_04_BarVaddrWithADeviceAttachedIsEfaultAndMapsNothing) {
  const int fd = bindDevice();
  const uint64_t va = anon(8 * kKiB);
  ASSERT_EQ(mapAt(va, 8 * kKiB, 0x10'0000), 0);
  EXPECT_FALSE(dmaReaches(0x10'0000)) << "not attached: DMA is blocked";
  ASSERT_EQ(attach(fd, ioas), 0);
  EXPECT_TRUE(dmaReaches(0x10'1000)) << "the attach pinned and mapped the area";

  const uint64_t va0 = mmapBar0(fd);
  ASSERT_NE(va0, 0U);
  EXPECT_EQ(mapAt(va0, 64 * kKiB, 0x20'0000), -14);
  EXPECT_FALSE(dmaReaches(0x20'0000));
  EXPECT_FALSE(dmaReaches(0x20'F000));
  EXPECT_EQ(ioasUnmap(0x20'0000, 64 * kKiB), -2) << "no area was left behind";
  EXPECT_TRUE(dmaReaches(0x10'0000)) << "the earlier area is untouched";
}

TEST_F(IommufdTest, IOMMUFD_05_BarVaddrWithoutADeviceIsLazyAndTheAttachFails) {
  const int fd = bindDevice();
  const uint64_t va0 = mmapBar0(fd);
  ASSERT_NE(va0, 0U);
  ASSERT_EQ(mapAt(va0, 64 * kKiB, 0x20'0000), 0) << "nothing is resolved yet";
  EXPECT_EQ(attach(fd, ioas), -14) << "the attach pins the BAR vaddr";
  EXPECT_FALSE(dmaReaches(0x20'0000)) << "the device did not get the domain";
  iommu_destroy d{.size = sizeof(d), .id = ioas};
  EXPECT_EQ(proc->ioctl(iommufd, IOMMU_DESTROY, &d), 0) << "no device holds the IOAS";
}

// Pins are accounted as iopt_pages accounts them without CAP_IPC_LOCK
// (IOPT_PAGES_ACCOUNT_USER, drivers/iommu/iommufd/pages.c:
// do_update_pinned()): while a domain holds an area's pages they are
// charged to the user's locked_vm and counted in the source mm's
// pinned_vm; the mm's own locked_vm, which type1 charges, stays 0. A lazy
// map pins nothing.
TEST_F(IommufdTest, PinsChargeTheUsersLockedVmAndTheMmsPinnedVm) {
  UserStruct& user = kernel->user();
  const uint64_t va = anon(80 * kKiB);
  ASSERT_EQ(mapAt(va, 64 * kKiB, 0x10'0000), 0);
  EXPECT_EQ(user.lockedVm(), 0U) << "no domain: nothing pinned yet";
  EXPECT_EQ(proc->mm().pinnedVm(), 0U);

  const int fd = bindDevice();
  ASSERT_EQ(attach(fd, ioas), 0);
  EXPECT_EQ(user.lockedVm(), 16U) << "the first domain pins the area";
  EXPECT_EQ(proc->mm().pinnedVm(), 16U);
  EXPECT_EQ(proc->mm().lockedVm(), 0U) << "the mm's locked_vm is type1's";

  ASSERT_EQ(mapAt(va + 64 * kKiB, 16 * kKiB, 0x20'0000), 0);
  EXPECT_EQ(user.lockedVm(), 20U) << "a map with a domain pins at once";
  ASSERT_EQ(ioasUnmap(0x20'0000, 16 * kKiB), 0);
  EXPECT_EQ(user.lockedVm(), 16U);
  EXPECT_EQ(proc->mm().pinnedVm(), 16U);

  vfio_device_detach_iommufd_pt detach{.argsz = sizeof(detach)};
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach), 0);
  EXPECT_EQ(user.lockedVm(), 0U) << "off the last domain, the pages are unpinned";
  EXPECT_EQ(proc->mm().pinnedVm(), 0U);
  ASSERT_EQ(attach(fd, ioas), 0);
  EXPECT_EQ(user.lockedVm(), 16U) << "pinned again";
  ASSERT_EQ(ioasUnmap(0, kU64Max), 0);
  EXPECT_EQ(user.lockedVm(), 0U);
  EXPECT_EQ(proc->mm().pinnedVm(), 0U);
}

// incr_user_locked_vm(): a pin that would take the user's locked_vm past
// the task's RLIMIT_MEMLOCK is -ENOMEM and leaves nothing mapped or
// charged, whether the map or a later attach pins.
TEST_F(IommufdTest, PinsPastRlimitMemlockAreEnomem) {
  proc->setRlimitMemlock(64 * kKiB);
  const uint64_t va = anon(128 * kKiB);
  ASSERT_EQ(mapAt(va, 128 * kKiB, 0x10'0000), 0) << "lazy: nothing is pinned yet";
  const int fd = bindDevice();
  EXPECT_EQ(attach(fd, ioas), -12) << "32 pages past a limit of 16";
  EXPECT_FALSE(dmaReaches(0x10'0000));
  EXPECT_EQ(kernel->user().lockedVm(), 0U);
  EXPECT_EQ(proc->mm().pinnedVm(), 0U);

  ASSERT_EQ(ioasUnmap(0x10'0000, 128 * kKiB), 0);
  ASSERT_EQ(attach(fd, ioas), 0);
  ASSERT_EQ(mapAt(va, 64 * kKiB, 0x10'0000), 0) << "exactly the limit";
  EXPECT_EQ(mapAt(va + 64 * kKiB, 4 * kKiB, 0x20'0000), -12) << "one page past it";
  EXPECT_FALSE(dmaReaches(0x20'0000)) << "the refused map left no IOPTE";
  EXPECT_TRUE(dmaReaches(0x10'0000));
  EXPECT_EQ(kernel->user().lockedVm(), 16U);
  EXPECT_EQ(proc->mm().pinnedVm(), 16U);
}

// iopt_alloc_pages(): a task with CAP_IPC_LOCK maps with
// IOPT_PAGES_ACCOUNT_NONE: no user's locked_vm is charged and no limit
// applies, but the pins still count in the mm's pinned_vm.
TEST_F(IommufdTest, PinsOfACapIpcLockTaskChargeNoLockedVm) {
  proc->setRlimitMemlock(64 * kKiB);
  proc->setCapIpcLock(true);
  const int fd = bindDevice();
  ASSERT_EQ(attach(fd, ioas), 0);
  const uint64_t va = anon(192 * kKiB);
  ASSERT_EQ(mapAt(va, 128 * kKiB, 0x10'0000), 0) << "32 pages past a limit of 16";
  EXPECT_TRUE(dmaReaches(0x10'0000));
  EXPECT_EQ(kernel->user().lockedVm(), 0U);
  EXPECT_EQ(proc->mm().pinnedVm(), 32U);

  proc->setCapIpcLock(false);
  EXPECT_EQ(mapAt(va + 128 * kKiB, 64 * kKiB, 0x40'0000), 0) << "exactly the limit";
  EXPECT_EQ(kernel->user().lockedVm(), 16U) << "this area is the user's";
  ASSERT_EQ(ioasUnmap(0x10'0000, 128 * kKiB), 0);
  EXPECT_EQ(kernel->user().lockedVm(), 16U) << "the first area never charged it";
  EXPECT_EQ(proc->mm().pinnedVm(), 16U);
  ASSERT_EQ(ioasUnmap(0, kU64Max), 0);
  EXPECT_EQ(kernel->user().lockedVm(), 0U);
  EXPECT_EQ(proc->mm().pinnedVm(), 0U);
}

TEST_F(IommufdTest, DestroyOfAnIoasWithADeviceIsEbusyUntilDetach) {
  const int fd = bindDevice();
  ASSERT_EQ(attach(fd, ioas), 0);
  iommu_destroy d{.size = sizeof(d), .id = ioas};
  EXPECT_EQ(proc->ioctl(iommufd, IOMMU_DESTROY, &d), -16);
  vfio_device_detach_iommufd_pt detach{.argsz = sizeof(detach)};
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach), 0);
  EXPECT_EQ(proc->ioctl(iommufd, IOMMU_DESTROY, &d), 0);
}

TEST_F(IommufdTest, ClosingTheCdevDetachesTheDevice) {
  const int fd = bindDevice();
  const uint64_t va = anon(4 * kKiB);
  ASSERT_EQ(mapAt(va, 4 * kKiB, 0x10'0000), 0);
  ASSERT_EQ(attach(fd, ioas), 0);
  ASSERT_TRUE(dmaReaches(0x10'0000));
  ASSERT_EQ(proc->close(fd), 0);
  EXPECT_FALSE(dmaReaches(0x10'0000));
  iommu_destroy d{.size = sizeof(d), .id = ioas};
  EXPECT_EQ(proc->ioctl(iommufd, IOMMU_DESTROY, &d), 0);
}

}  // namespace
}  // namespace vfiomm

namespace vfiomm {
namespace {

constexpr uint32_t kVfioRw = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

// dma-mapping.md §3.3: the /dev/iommu fd as a VFIO container. D's group is
// set to it (the compat IOAS is created), the container ioctls go to the
// same fd, and D's device fd comes from the group (bound and attached to
// the compat IOAS at its first open).
class IommufdCompatTest : public IommufdTest {
 protected:
  void SetUp() override {
    IommufdTest::SetUp();
    group = static_cast<int>(proc->open(kernel->groupPath(*dev), O_RDWR));
    ASSERT_GE(group, 0);
    ASSERT_EQ(proc->ioctl(group, VFIO_GROUP_SET_CONTAINER, &iommufd), 0);
  }
  // SET_IOMMU(type), then D's device fd, memory decode on, BAR0 mmapped.
  void openDevice(unsigned long type) {
    ASSERT_EQ(proc->ioctl(iommufd, VFIO_SET_IOMMU, ioctlArg(type)), 0);
    fd = static_cast<int>(
        proc->ioctl(group, VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(dev->name().c_str())));
    ASSERT_GE(fd, 0);
    uint32_t cmd = kPciCommandMemory;
    ASSERT_EQ(proc->pwrite(fd, &cmd, 2, kConfigOffset + kPciCommand), 2);
    va0 = mmapBar0(fd);
    ASSERT_GT(va0, 0U);
  }
  long mapDma(uint64_t vaddr, uint64_t iova, uint64_t size, uint32_t flags = kVfioRw) {
    vfio_iommu_type1_dma_map m{
        .argsz = sizeof(m), .flags = flags, .vaddr = vaddr, .iova = iova, .size = size};
    return proc->ioctl(iommufd, VFIO_IOMMU_MAP_DMA, &m);
  }
  long unmapDma(uint64_t iova, uint64_t size, uint64_t* removed = nullptr) {
    vfio_iommu_type1_dma_unmap u{.argsz = sizeof(u), .iova = iova, .size = size};
    const long r = proc->ioctl(iommufd, VFIO_IOMMU_UNMAP_DMA, &u);
    if (removed != nullptr) *removed = u.size;
    return r;
  }
  static constexpr uint64_t kConfigOffset = uint64_t{7} << 40;
  int group = -1;
  int fd = -1;
  uint64_t va0 = 0;
};

TEST_F(IommufdCompatTest, IOMMUFD_06_ContainerIoctlsOnTheIommufd) {
  EXPECT_EQ(proc->ioctl(iommufd, VFIO_GET_API_VERSION, nullptr), 0);
  EXPECT_EQ(proc->ioctl(iommufd, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_TYPE1_IOMMU)), 1);
  EXPECT_EQ(proc->ioctl(iommufd, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_TYPE1v2_IOMMU)), 1);
  EXPECT_EQ(proc->ioctl(iommufd, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_UNMAP_ALL)), 1);
  EXPECT_EQ(proc->ioctl(iommufd, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_UPDATE_VADDR)), 0);
  EXPECT_EQ(proc->ioctl(iommufd, VFIO_SET_IOMMU, ioctlArg(2)), -22);
  openDevice(VFIO_TYPE1v2_IOMMU);
  // Short: argsz 24 gets the fixed part, the full size and no cap_offset.
  vfio_iommu_type1_info info{.argsz = 24};
  ASSERT_EQ(proc->ioctl(iommufd, VFIO_IOMMU_GET_INFO, &info), 0);
  EXPECT_EQ(info.flags, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
  EXPECT_EQ(info.iova_pgsizes, 0x40201000U);
  EXPECT_EQ(info.cap_offset, 0U);
  // 24 + DMA_AVAIL (12) + IOVA_RANGE (16 + 2 ranges of 16).
  ASSERT_EQ(info.argsz, 24U + 12U + 48U);
  std::vector<uint8_t> buf(info.argsz, 0);
  const uint32_t argsz = info.argsz;
  std::memcpy(buf.data(), &argsz, sizeof(argsz));
  ASSERT_EQ(proc->ioctl(iommufd, VFIO_IOMMU_GET_INFO, buf.data()), 0);
  std::memcpy(&info, buf.data(), sizeof(info));
  ASSERT_EQ(info.cap_offset, 24U);
  std::vector<uint16_t> ids;
  for (uint32_t off = info.cap_offset; off != 0;) {
    vfio_info_cap_header h;
    std::memcpy(&h, &buf[off], sizeof(h));
    ids.push_back(h.id);
    if (h.id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
      vfio_iommu_type1_info_dma_avail avail;
      std::memcpy(&avail, &buf[off], sizeof(avail));
      EXPECT_EQ(avail.avail, 0xFFFF'FFFFU);
    }
    off = h.next;
  }
  EXPECT_EQ(ids, (std::vector<uint16_t>{VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
                                        VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE}))
      << "no MIGRATION capability";
  vfio_iova_range ranges[2];
  std::memcpy(ranges, &buf[24 + 12 + 16], sizeof(ranges));
  EXPECT_EQ(ranges[0].start, 0U);
  EXPECT_EQ(ranges[0].end, 0xFEDF'FFFFU);
  EXPECT_EQ(ranges[1].start, 0xFEF0'0000U);
  EXPECT_EQ(proc->ioctl(iommufd, VFIO_IOMMU_DIRTY_PAGES, nullptr), -25);  // ENOTTY
}

// Before SET_CONTAINER there is no compat IOAS: the ioctls that need one
// are -ENODEV (a fresh iommufd).
TEST_F(IommufdCompatTest, IOMMUFD_06_WithoutACompatIoasItIsEnodev) {
  const int fresh = static_cast<int>(proc->open("/dev/iommu", O_RDWR));
  EXPECT_EQ(proc->ioctl(fresh, VFIO_GET_API_VERSION, nullptr), 0);
  EXPECT_EQ(proc->ioctl(fresh, VFIO_SET_IOMMU, ioctlArg(VFIO_TYPE1v2_IOMMU)), -19);
  EXPECT_EQ(proc->ioctl(fresh, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_DMA_CC_IOMMU)), -19);
  EXPECT_EQ(proc->ioctl(iommufd, VFIO_CHECK_EXTENSION, ioctlArg(VFIO_DMA_CC_IOMMU)), 1);
}

class IommufdCompatModes : public IommufdCompatTest,
                           public ::testing::WithParamInterface<unsigned long> {};

TEST_P(IommufdCompatModes, IOMMUFD_07_BarVaddrAndVaddrFlag) {
  openDevice(GetParam());
  EXPECT_EQ(mapDma(va0, 0x10'0000, 64 * kKiB), -14) << "GUP refuses the PFNMAP VMA";
  EXPECT_FALSE(dmaReaches(0x10'0000));
  uint64_t removed = 1;
  EXPECT_EQ(unmapDma(0x10'0000, 64 * kKiB, &removed), -2) << "nothing mapped there";
  EXPECT_EQ(removed, 0U);
  const uint64_t buf = anon(64 * kKiB);
  EXPECT_EQ(mapDma(buf, 0x10'0000, 64 * kKiB, kVfioRw | VFIO_DMA_MAP_FLAG_VADDR), -22);
  EXPECT_EQ(mapDma(buf, 0x10'0000, 64 * kKiB), 0);
  EXPECT_TRUE(dmaReaches(0x10'0000));
}

// §3.3's unmap rules per mode: TYPE1v2 refuses to cut an area (-ENOENT
// where type1 says -EINVAL); TYPE1 cuts it first, so the middle goes.
TEST_P(IommufdCompatModes, IOMMUFD_07_UnmapInsideAnArea) {
  openDevice(GetParam());
  const uint64_t buf = anon(64 * kKiB);
  ASSERT_EQ(mapDma(buf, 0x10'0000, 64 * kKiB), 0);
  uint64_t removed = 0;
  if (GetParam() == VFIO_TYPE1v2_IOMMU) {
    EXPECT_EQ(unmapDma(0x10'4000, 16 * kKiB, &removed), -2);
    EXPECT_TRUE(dmaReaches(0x10'4000));
  } else {
    EXPECT_EQ(unmapDma(0x10'4000, 16 * kKiB, &removed), 0);
    EXPECT_EQ(removed, 16 * kKiB);
    EXPECT_FALSE(dmaReaches(0x10'4000));
    EXPECT_TRUE(dmaReaches(0x10'0000));
    EXPECT_TRUE(dmaReaches(0x10'8000));
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, IommufdCompatModes,
                         ::testing::Values(VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU),
                         [](const ::testing::TestParamInfo<unsigned long>& p) {
                           return std::string(p.param == VFIO_TYPE1_IOMMU ? "type1" : "type1v2");
                         });

// afb47765f923: an empty unmap succeeds with size 0, as type1's does.
TEST_F(IommufdCompatTest, IOMMUFD_07_EmptyUnmapSucceedsFromAfb47765f923) {
  KernelProfile p = *KernelProfile::byName("linux-6.15");
  p.iommufd.compatUnmapEmpty = true;
  KernelConfig cfg;
  cfg.profileOverride = p;
  proc.reset();
  kernel = *Kernel::create(cfg);
  dev = &kernel->addStandardDevice();
  proc = Process::spawn(*kernel, "qemu");
  iommufd = static_cast<int>(proc->open("/dev/iommu", O_RDWR));
  group = static_cast<int>(proc->open(kernel->groupPath(*dev), O_RDWR));
  ASSERT_EQ(proc->ioctl(group, VFIO_GROUP_SET_CONTAINER, &iommufd), 0);
  openDevice(VFIO_TYPE1v2_IOMMU);
  EXPECT_EQ(mapDma(va0, 0x10'0000, 64 * kKiB), -14);
  uint64_t removed = 1;
  EXPECT_EQ(unmapDma(0x10'0000, 64 * kKiB, &removed), 0);
  EXPECT_EQ(removed, 0U);
  // Native IOAS_UNMAP of nothing is still -ENOENT.
  EXPECT_EQ(ioasUnmap(0x10'0000, 64 * kKiB), -2);
}

// The compat IOAS outlives neither the group's hold nor its own fd: after
// the group's last close the device is detached and a second group open
// works again; the group was held by the device fd until then.
TEST_F(IommufdCompatTest, IOMMUFD_06_GroupReleaseDetachesTheDevice) {
  openDevice(VFIO_TYPE1v2_IOMMU);
  const uint64_t buf = anon(16 * kKiB);
  ASSERT_EQ(mapDma(buf, 0x10'0000, 16 * kKiB), 0);
  EXPECT_EQ(proc->ioctl(group, VFIO_GROUP_SET_CONTAINER, &iommufd), -22);
  ASSERT_EQ(proc->munmap(va0, 64 * kKiB), 0);
  ASSERT_EQ(proc->close(fd), 0);
  EXPECT_FALSE(dmaReaches(0x10'0000)) << "the last close unbinds the device";
  ASSERT_EQ(proc->close(group), 0);
  EXPECT_GE(proc->open(kernel->groupPath(*dev), O_RDWR), 0);
}

// iommufd_fops_mmap (v6.17): /dev/iommu has ->mmap for the MMIO of a
// vIOMMU's hardware queue. The model registers none, so a mapping that
// passes the driver's checks finds nothing; before v6.17 do_mmap() refuses
// the file for having no ->mmap.
TEST(IommufdMmapTest, FromV617TheDriverAnswersInsteadOfDoMmap) {
  for (const char* name : {"linux-6.15", "linux-6.19"}) {
    SCOPED_TRACE(name);
    KernelConfig cfg;
    cfg.profile = name;
    auto kernel = *Kernel::create(cfg);
    auto proc = Process::spawn(*kernel, "qemu");
    const int rw = static_cast<int>(proc->open("/dev/iommu", O_RDWR));
    const int ro = static_cast<int>(proc->open("/dev/iommu", O_RDONLY));
    ASSERT_GE(rw, 0);
    ASSERT_GE(ro, 0);
    const bool hasMmap = kernel->profile().iommufd.mmap;
    EXPECT_EQ(hasMmap, std::string(name) == "linux-6.19");
    const auto rwMap = [&](int prot, int flags) { return proc->mmap(0, 4096, prot, flags, rw, 0); };
    EXPECT_EQ(rwMap(prot::kRead | prot::kWrite, map::kShared), hasMmap ? -6 : -19)
        << "no immap at offset 0 (-ENXIO)";
    EXPECT_EQ(rwMap(prot::kRead, map::kPrivate), hasMmap ? -22 : -19) << "not VM_SHARED";
    EXPECT_EQ(rwMap(prot::kRead | prot::kExec, map::kShared), hasMmap ? -1 : -19) << "VM_EXEC";
    EXPECT_EQ(proc->mmap(0, 4096, prot::kRead, map::kShared, ro, 0), hasMmap ? -22 : -19)
        << "open read-only: do_mmap() leaves VM_MAYSHARE, not VM_SHARED";
    EXPECT_EQ(proc->mm().mapCount(), 0U);
  }
}

// MADV_REMOVE of a shared memfd mapping punches its hole (shmem_fallocate):
// the page leaves the file and the next pin of its address gets a fresh
// one; a page pinned before stays with the mapping that pinned it.
TEST_F(IommufdTest, MadvRemovePunchesAMemfdPageOutOfTheFile) {
  const int fd = bindDevice();
  ASSERT_EQ(attach(fd, ioas), 0);
  const int mfd = static_cast<int>(proc->memfdCreate("guest-ram", 0));
  ASSERT_GE(mfd, 0);
  ASSERT_EQ(proc->ftruncate(mfd, 8 * kKiB), 0);
  const long va = proc->mmap(0, 8 * kKiB, prot::kRead | prot::kWrite, map::kShared, mfd, 0);
  ASSERT_GT(va, 0);
  const auto vaddr = static_cast<uint64_t>(va);
  ASSERT_EQ(mapAt(vaddr, 8 * kKiB, 0x10'0000), 0);
  Iommu& iommu = kernel->iommu();
  for (uint64_t iova : {uint64_t{0x10'0000}, uint64_t{0x10'1000}})
    ASSERT_TRUE(iommu.dmaWrite(dev->pdev(), iova, 4, 0x5a5a'5a5aU));
  EXPECT_EQ(proc->madvise(vaddr, 4096, madv::kRemove), 0);
  ASSERT_EQ(mapAt(vaddr, 8 * kKiB, 0x20'0000), 0);
  const auto read = [&](uint64_t iova) {
    return iommu.dmaRead(dev->pdev(), iova, 4).value_or(~uint64_t{0});
  };
  EXPECT_EQ(read(0x20'0000), 0U) << "a fresh page";
  EXPECT_EQ(read(0x20'1000), 0x5a5a'5a5aU) << "the page past the hole stayed in the file";
  EXPECT_EQ(read(0x10'0000), 0x5a5a'5a5aU) << "the first area keeps the page it pinned";
}

}  // namespace
}  // namespace vfiomm
