// The vfio device uapi a VMM calls before it maps anything: GET_INFO,
// GET_IRQ_INFO, region info and its capability chains, VFIO_DEVICE_FEATURE,
// hot-reset info and hot reset (vfio-uapi.md §1-§7, conformance UAPI-01 to
// UAPI-21). Buffers are pre-filled with 0xA5 so that the bytes the kernel
// must not write are visible.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "abi/vfio.h"
#include "base/counter.h"
#include "kernel/kernel.h"
#include "mm/vm_flags.h"
#include "pci/pci_bus.h"
#include "pci/pci_regs.h"
#include "pci/standard_device.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_group.h"
#include "vfio/vfio_pci_regions.h"

namespace vfiomm {
namespace {

using namespace vfiomm::uapi;

constexpr uint8_t kFill = 0xA5;

long neg(Errno e) { return -static_cast<long>(toInt(e)); }

// A user buffer of `size` bytes of 0xA5 whose first bytes are the fields
// of `head` the caller sets: the input part (minsz) of a vfio_device_info,
// all of a vfio_region_info.
template <typename T>
std::vector<uint8_t> userBuffer(const T& head, size_t size) {
  std::vector<uint8_t> buf(std::max(size, sizeof(T)), kFill);
  constexpr size_t input =
      std::is_same_v<T, vfio_device_info> ? offsetof(vfio_device_info, cap_offset) : sizeof(T);
  std::memcpy(buf.data(), &head, input);
  return buf;
}

template <typename T>
T structAt(const std::vector<uint8_t>& buf, size_t offset = 0) {
  T t;
  std::memcpy(&t, buf.data() + offset, sizeof(T));
  return t;
}

bool untouched(const std::vector<uint8_t>& buf, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i)
    if (buf[i] != kFill) return false;
  return true;
}

class DeviceUapiTest : public ::testing::Test {
 protected:
  void boot(const std::string& profile = "linux-6.12", DesignKind design = KernelConfig{}.design,
            DesignOptions options = {}) {
    KernelConfig cfg;
    cfg.profile = profile;
    cfg.design = design;
    cfg.designOptions = options;
    proc.reset();
    kernel.reset();  // first: the new kernel then runs on this thread
    kernel = *Kernel::create(cfg);
    proc = Process::spawn(*kernel, "vmm");
    container = -1;
    groupFds.clear();
  }
  void SetUp() override { boot(); }
  void TearDown() override {
    proc.reset();
    kernel.reset();
  }

  // Conformance.md's D: alone on bus 01 behind a root port.
  VfioDevice& standardD() { return kernel->addStandardDevice(); }

  VfioDevice& addDevice(PciBus& bus, const PciDeviceConfig& cfg) {
    auto d = kernel->addVfioDevice(bus, cfg);
    EXPECT_TRUE(d.has_value());
    return **d;
  }

  int openGroup(VfioDevice& dev) {
    if (container < 0) container = static_cast<int>(proc->open("/dev/vfio/vfio", O_RDWR));
    const int group = static_cast<int>(proc->open(kernel->groupPath(dev), O_RDWR));
    int c = container;
    EXPECT_EQ(proc->ioctl(group, VFIO_GROUP_SET_CONTAINER, &c), 0);
    proc->ioctl(container, VFIO_SET_IOMMU, ioctlArg(VFIO_TYPE1v2_IOMMU));
    groupFds[&dev] = group;
    const long fd =
        proc->ioctl(group, VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(dev.name().c_str()));
    EXPECT_GE(fd, 0);
    return static_cast<int>(fd);
  }

  // The cdev path, bound to `iommufd`; returns the fd and the devid.
  std::pair<int, uint32_t> openCdev(VfioDevice& dev, int iommufd) {
    const long fd = proc->open(kernel->cdevPath(dev), O_RDWR);
    EXPECT_GE(fd, 0);
    vfio_device_bind_iommufd bind{.argsz = sizeof(bind), .iommufd = iommufd};
    EXPECT_EQ(proc->ioctl(static_cast<int>(fd), VFIO_DEVICE_BIND_IOMMUFD, &bind), 0);
    return {static_cast<int>(fd), bind.out_devid};
  }

  uint32_t deviceFlags(int fd) {
    vfio_device_info info{.argsz = sizeof(info)};
    EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, &info), 0);
    return info.flags;
  }

  long feature(int fd, uint32_t flags, uint32_t argsz = sizeof(vfio_device_feature),
               const void* payload = nullptr, size_t payloadSize = 0) {
    std::vector<uint8_t> buf(std::max<size_t>(argsz, sizeof(vfio_device_feature) + payloadSize));
    vfio_device_feature head;
    head.argsz = argsz;
    head.flags = flags;
    std::memcpy(buf.data(), &head, sizeof(head));
    if (payloadSize != 0) std::memcpy(buf.data() + sizeof(head), payload, payloadSize);
    return proc->ioctl(fd, VFIO_DEVICE_FEATURE, buf.data());
  }

  // LOW_POWER_ENTRY_WITH_WAKEUP with a fresh eventfd, returned.
  int enterLowPowerWithWakeup(int fd) {
    vfio_device_low_power_entry_with_wakeup w{};
    w.wakeup_eventfd = static_cast<int32_t>(proc->eventfd(0, 0));
    const uint32_t flags =
        VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP;
    EXPECT_EQ(feature(fd, flags, 16, &w, sizeof(w)), 0);
    return w.wakeup_eventfd;
  }

  // What a read of the eventfd returns: its count, or 0 when it would block.
  uint64_t eventfdCount(int efd) {
    uint64_t count = 0;
    const long n = proc->read(efd, &count, sizeof(count));
    EXPECT_TRUE(n == 8 || n == neg(Errno::kEAGAIN)) << n;
    return n == 8 ? count : 0;
  }

  // A mapping of BAR0's first 64 KiB.
  uint64_t mapBar0(int fd) {
    const long va = proc->mmap(0, 0x10000, prot::kRead | prot::kWrite, map::kShared, fd, 0);
    EXPECT_GT(va, 0);
    return static_cast<uint64_t>(va);
  }

  // A 2-byte config pread (COMMAND), which resumes a suspended device.
  void readCommand(int fd) {
    uint16_t cmd = 0;
    EXPECT_EQ(proc->pread(fd, &cmd, 2, vfio::indexToOffset(vfio::kConfig) + 4), 2);
  }

  std::unique_ptr<Kernel> kernel;
  std::shared_ptr<Process> proc;
  int container = -1;
  std::map<VfioDevice*, int> groupFds;
};

PciDeviceConfig withoutFlr(uint8_t bus, uint8_t slot = 0, uint8_t fn = 0) {
  PciDeviceConfig c = standardDeviceConfig(bus, slot);
  c.function = fn;
  c.pcie->flr = false;
  c.pm->noSoftReset = true;
  return c;
}

// --- GET_INFO ---------------------------------------------------------------------

TEST_F(DeviceUapiTest, UAPI_01_GetInfoOfD) {
  const int fd = openGroup(standardD());
  auto buf = userBuffer(vfio_device_info{.argsz = 24}, 24);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, buf.data()), 0);
  const auto info = structAt<vfio_device_info>(buf);
  EXPECT_EQ(info.flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
  EXPECT_EQ(info.num_regions, 9U);
  EXPECT_EQ(info.num_irqs, 5U);
  EXPECT_EQ(info.argsz, 24U);
  EXPECT_EQ(info.cap_offset, 0U);
  EXPECT_EQ(info.pad, 0U);
}

TEST_F(DeviceUapiTest, UAPI_02_GetInfoArgszAndCopyBack) {
  const int fd = openGroup(standardD());
  auto small = userBuffer(vfio_device_info{.argsz = 15}, 24);
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, small.data()), neg(Errno::kEINVAL));
  auto exact = userBuffer(vfio_device_info{.argsz = 16}, 24);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, exact.data()), 0);
  EXPECT_EQ(structAt<vfio_device_info>(exact).num_irqs, 5U);
  EXPECT_TRUE(untouched(exact, 16, 24));
  auto big = userBuffer(vfio_device_info{.argsz = 64}, 64);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, big.data()), 0);
  EXPECT_EQ(structAt<vfio_device_info>(big).argsz, 64U);
  EXPECT_EQ(structAt<vfio_device_info>(big).pad, 0U);  // devinfo_copyback v2: 24 bytes
  EXPECT_TRUE(untouched(big, 24, 64));

  // linux-6.1 (v1): 20 bytes, cap_offset 0, the pad untouched.
  TearDown();
  boot("linux-6.1");
  const int fd61 = openGroup(standardD());
  auto v1 = userBuffer(vfio_device_info{.argsz = 64, .cap_offset = 0x1234}, 64);
  ASSERT_EQ(proc->ioctl(fd61, VFIO_DEVICE_GET_INFO, v1.data()), 0);
  EXPECT_EQ(structAt<vfio_device_info>(v1).cap_offset, 0U);
  EXPECT_TRUE(untouched(v1, 20, 64));
}

TEST_F(DeviceUapiTest, UAPI_03_ResetFlagFollowsTheResetTheKernelPerforms) {
  EXPECT_NE(deviceFlags(openGroup(standardD())) & VFIO_DEVICE_FLAGS_RESET, 0U);
  // No FLR, NoSoftRst: alone behind a root port, the bus method works.
  PciBus& alone = kernel->addBus(0x10);
  EXPECT_NE(deviceFlags(openGroup(addDevice(alone, withoutFlr(0x10)))) & VFIO_DEVICE_FLAGS_RESET,
            0U);
  // The same on a root bus: no method.
  PciBus& root = kernel->addBus(0x20, /*behindBridge=*/false);
  const int rootFd = openGroup(addDevice(root, withoutFlr(0x20)));
  EXPECT_EQ(deviceFlags(rootFd) & VFIO_DEVICE_FLAGS_RESET, 0U);
  EXPECT_EQ(proc->ioctl(rootFd, VFIO_DEVICE_RESET, nullptr), neg(Errno::kEINVAL));
  // On a root bus with NoSoftRst clear: the PM reset.
  PciBus& root2 = kernel->addBus(0x21, /*behindBridge=*/false);
  PciDeviceConfig pm = withoutFlr(0x21);
  pm.pm->noSoftReset = false;
  EXPECT_NE(deviceFlags(openGroup(addDevice(root2, pm))) & VFIO_DEVICE_FLAGS_RESET, 0U);
  // Two functions on one bus, neither with FLR nor PM reset: none.
  PciBus& shared = kernel->addBus(0x30);
  VfioDevice& f0 = addDevice(shared, withoutFlr(0x30, 0, 0));
  VfioDevice& f1 = addDevice(shared, withoutFlr(0x30, 0, 1));
  EXPECT_EQ(deviceFlags(openGroup(f0)) & VFIO_DEVICE_FLAGS_RESET, 0U);
  EXPECT_EQ(deviceFlags(openGroup(f1)) & VFIO_DEVICE_FLAGS_RESET, 0U);
}

TEST_F(DeviceUapiTest, UAPI_04_AtomicCompleterCapability) {
  PciBus& bus = kernel->addBus(
      PciBusConfig{.number = 0x10, .rootPortAtomicCompleter = kPciExpDevcap2AtomicComp64});
  PciDeviceConfig cfg = standardDeviceConfig(0x10);
  cfg.pcie->atomicCompleter = kPciExpDevcap2AtomicComp64 | kPciExpDevcap2AtomicComp128;
  VfioDevice& d = addDevice(bus, cfg);
  const int fd = openGroup(d);
  auto tooSmall = userBuffer(vfio_device_info{.argsz = 24}, 40);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, tooSmall.data()), 0);
  EXPECT_EQ(structAt<vfio_device_info>(tooSmall).flags, 0x83U);
  EXPECT_EQ(structAt<vfio_device_info>(tooSmall).argsz, 40U);
  EXPECT_EQ(structAt<vfio_device_info>(tooSmall).cap_offset, 0U);
  EXPECT_TRUE(untouched(tooSmall, 24, 40));
  // Below the whole struct: what is copied back is what the caller's argsz
  // covers, however long the chain (vfio_pci_ioctl_get_info's minsz).
  auto v1Sized = userBuffer(vfio_device_info{.argsz = 16}, 40);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, v1Sized.data()), 0);
  EXPECT_EQ(structAt<vfio_device_info>(v1Sized).flags, 0x83U);
  EXPECT_EQ(structAt<vfio_device_info>(v1Sized).argsz, 40U);
  EXPECT_TRUE(untouched(v1Sized, 16, 40));

  auto full = userBuffer(vfio_device_info{.argsz = 40}, 40);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, full.data()), 0);
  EXPECT_EQ(structAt<vfio_device_info>(full).cap_offset, 24U);
  const auto cap = structAt<vfio_device_info_cap_pci_atomic_comp>(full, 24);
  EXPECT_EQ(cap.header.id, VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP);
  EXPECT_EQ(cap.header.version, 1U);
  EXPECT_EQ(cap.header.next, 0U);
  EXPECT_EQ(cap.flags, VFIO_PCI_ATOMIC_COMP64);  // the root port completes only 64-bit
  EXPECT_EQ(cap.reserved, 0U);
  // The enable's side effect: AtomicOp Requester Enable in DEVCTL2.
  const uint32_t devctl2 = *d.pdev().pcieCapOffset() + kPciExpDevctl2;
  EXPECT_NE(*d.pdev().configRead(devctl2, 2) & kPciExpDevctl2AtomicReq, 0U);

  TearDown();
  boot("linux-6.1");
  PciBus& bus61 = kernel->addBus(
      PciBusConfig{.number = 0x10, .rootPortAtomicCompleter = kPciExpDevcap2AtomicComp64});
  EXPECT_EQ(deviceFlags(openGroup(addDevice(bus61, cfg))), 0x3U);
}

// --- GET_IRQ_INFO -------------------------------------------------------------------

vfio_irq_info irqInfo(Process& p, int fd, uint32_t index, long* rc) {
  vfio_irq_info info{.argsz = sizeof(info), .index = index};
  *rc = p.ioctl(fd, VFIO_DEVICE_GET_IRQ_INFO, &info);
  return info;
}

TEST_F(DeviceUapiTest, UAPI_05_IrqInfoOfD) {
  const int fd = openGroup(standardD());
  struct Row {
    uint32_t index, count, flags;
  };
  // msix_dynamic on 6.12: MSI-X can grow, so no NORESIZE.
  for (const Row& r :
       {Row{0, 1, 0x7}, Row{1, 0, 0x9}, Row{2, 16, 0x1}, Row{3, 1, 0x9}, Row{4, 1, 0x9}}) {
    long rc = 0;
    const vfio_irq_info info = irqInfo(*proc, fd, r.index, &rc);
    ASSERT_EQ(rc, 0) << r.index;
    EXPECT_EQ(info.count, r.count) << r.index;
    EXPECT_EQ(info.flags, r.flags) << r.index;
  }
  long rc = 0;
  irqInfo(*proc, fd, 5, &rc);
  EXPECT_EQ(rc, neg(Errno::kEINVAL));
  vfio_irq_info shortInfo{.argsz = 15, .index = 0};
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_IRQ_INFO, &shortInfo), neg(Errno::kEINVAL));

  TearDown();
  boot("linux-6.1");
  const int fd61 = openGroup(standardD());
  EXPECT_EQ(irqInfo(*proc, fd61, 2, &rc).flags, 0x9U);
}

TEST_F(DeviceUapiTest, UAPI_06_IrqInfoFollowsTheDevice) {
  long rc = 0;
  PciBus& a = kernel->addBus(0x10);
  PciDeviceConfig noPcie = standardDeviceConfig(0x10);
  noPcie.pcie.reset();
  irqInfo(*proc, openGroup(addDevice(a, noPcie)), 3, &rc);
  EXPECT_EQ(rc, neg(Errno::kEINVAL));

  PciBus& b = kernel->addBus(0x11);
  PciDeviceConfig noPin = standardDeviceConfig(0x11);
  noPin.interruptPin = 0;
  const vfio_irq_info intx = irqInfo(*proc, openGroup(addDevice(b, noPin)), 0, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(intx.count, 0U);
  EXPECT_EQ(intx.flags, 0x7U);

  PciBus& c = kernel->addBus(0x12);
  PciDeviceConfig vf = standardDeviceConfig(0x12);
  vf.noCommandMemory = true;
  vf.bars[4].reset();  // a VF has no I/O BAR
  EXPECT_EQ(irqInfo(*proc, openGroup(addDevice(c, vf)), 0, &rc).count, 0U);

  PciBus& d = kernel->addBus(0x13);
  PciDeviceConfig msi = standardDeviceConfig(0x13);
  msi.msi = MsiSpec{.multipleMessageCapable = 3};
  EXPECT_EQ(irqInfo(*proc, openGroup(addDevice(d, msi)), 1, &rc).count, 8U);

  // No MSI-X capability: has_dyn_msix is false whatever the platform, so
  // the empty index cannot grow (NORESIZE) even with msix_dynamic.
  PciBus& e = kernel->addBus(0x14);
  PciDeviceConfig noMsix = standardDeviceConfig(0x14);
  noMsix.msix.reset();
  const vfio_irq_info msix = irqInfo(*proc, openGroup(addDevice(e, noMsix)), 2, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(msix.count, 0U);
  EXPECT_EQ(msix.flags, 0x9U);
}

// vfio_pci_core_enable(): an i40e is on the nointx list (its INTx status
// is broken), so vfio keeps INTx disabled on the device and hides it; a
// function that can mask INTx gets its INTx-disable bit cleared at open,
// whatever firmware left there (vfio-uapi.md §3, §8).
TEST_F(DeviceUapiTest, UAPI_06_UAPI_22_NointxHidesIntxAndOthersStartUnmasked) {
  long rc = 0;
  PciBus& a = kernel->addBus(0x14);
  PciDeviceConfig i40e = standardDeviceConfig(0x14);
  i40e.vendorId = 0x8086;
  i40e.deviceId = 0x1572;  // X710
  VfioDevice& x710 = addDevice(a, i40e);
  const int fd = openGroup(x710);
  const vfio_irq_info intx = irqInfo(*proc, fd, 0, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(intx.count, 0U);
  EXPECT_EQ(intx.flags, 0x7U);
  uint8_t pin = 0xff;
  EXPECT_EQ(proc->pread(fd, &pin, 1, (7ULL << 40) + kPciInterruptPin), 1);
  EXPECT_EQ(pin, 0);
  uint16_t cmd = 0;
  EXPECT_EQ(proc->pread(fd, &cmd, 2, (7ULL << 40) + kPciCommand), 2);
  EXPECT_NE(cmd & kPciCommandIntxDisable, 0);
  EXPECT_NE(x710.pdev().configRead(kPciCommand, 2).value_or(0) & kPciCommandIntxDisable, 0U);
  const auto lines = kernel->machine().log().lines();
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "vfio-pci " + x710.pdev().name() + ": Masking broken INTx support"),
            lines.end());

  PciBus& b = kernel->addBus(0x15);
  VfioDevice& other = addDevice(b, standardDeviceConfig(0x15));
  // Awake (power/control "on"), so no runtime resume restores over the write.
  other.pci().setRuntimePmAllowed(false);
  ASSERT_TRUE(other.pdev().configWrite(kPciCommand, 2, kPciCommandIntxDisable));  // firmware's
  const int otherFd = openGroup(other);
  EXPECT_EQ(irqInfo(*proc, otherFd, 0, &rc).count, 1U);
  EXPECT_EQ(proc->pread(otherFd, &cmd, 2, (7ULL << 40) + kPciCommand), 2);
  EXPECT_EQ(cmd & kPciCommandIntxDisable, 0);
  EXPECT_EQ(other.pdev().configRead(kPciCommand, 2).value_or(0) & kPciCommandIntxDisable, 0U);
}

// pci_enable_device() adds the decode bits of the BAR kinds present to
// what firmware set; Bus Master is cleared before (vfio-uapi.md §8).
TEST_F(DeviceUapiTest, UAPI_22_OpenKeepsFirmwareCommandBitsAndAddsDecode) {
  PciBus& b = kernel->addBus(0x15);
  VfioDevice& d = addDevice(b, standardDeviceConfig(0x15));
  d.pci().setRuntimePmAllowed(false);  // no runtime resume restores over the write
  ASSERT_TRUE(d.pdev().configWrite(
      kPciCommand, 2, kPciCommandSerr | kPciCommandParity | kPciCommandMaster));  // firmware's
  const int fd = openGroup(d);
  uint16_t cmd = 0;
  EXPECT_EQ(proc->pread(fd, &cmd, 2, (7ULL << 40) + kPciCommand), 2);
  EXPECT_EQ(cmd, kPciCommandSerr | kPciCommandParity | kPciCommandMemory | kPciCommandIo);

  // Memory BARs only: no I/O decode.
  PciBus& m = kernel->addBus(0x16);
  PciDeviceConfig memOnly = standardDeviceConfig(0x16);
  memOnly.bars[4].reset();
  VfioDevice& e = addDevice(m, memOnly);
  e.pci().setRuntimePmAllowed(false);
  EXPECT_EQ(e.pdev().configRead(kPciCommand, 2).value_or(1), 0U);
  const int efd = openGroup(e);
  EXPECT_EQ(proc->pread(efd, &cmd, 2, (7ULL << 40) + kPciCommand), 2);
  EXPECT_EQ(cmd, kPciCommandMemory);
}

// --- GET_REGION_INFO ------------------------------------------------------------------

TEST_F(DeviceUapiTest, UAPI_07_MsixMappableCapabilityProtocol) {
  const int fd = openGroup(standardD());
  auto small = userBuffer(vfio_region_info{.argsz = 32, .index = 0}, 64);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, small.data()), 0);
  auto info = structAt<vfio_region_info>(small);
  EXPECT_EQ(info.flags, 0xFU);
  EXPECT_EQ(info.argsz, 40U);
  EXPECT_EQ(info.cap_offset, 0U);
  EXPECT_TRUE(untouched(small, 32, 64));

  auto fits = userBuffer(vfio_region_info{.argsz = 40, .index = 0}, 64);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, fits.data()), 0);
  info = structAt<vfio_region_info>(fits);
  EXPECT_EQ(info.argsz, 40U);
  EXPECT_EQ(info.cap_offset, 32U);
  const auto header = structAt<vfio_info_cap_header>(fits, 32);
  EXPECT_EQ(header.id, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE);
  EXPECT_EQ(header.version, 1U);
  EXPECT_EQ(header.next, 0U);
  EXPECT_TRUE(untouched(fits, 40, 64));

  auto big = userBuffer(vfio_region_info{.argsz = 64, .index = 0}, 64);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, big.data()), 0);
  EXPECT_EQ(structAt<vfio_region_info>(big).argsz, 64U);
  EXPECT_EQ(structAt<vfio_region_info>(big).cap_offset, 32U);
  EXPECT_TRUE(untouched(big, 40, 64));
}

TEST_F(DeviceUapiTest, UAPI_08_DeviceRegionTypeAndSparseCapabilities) {
  VfioDevice& d = standardD();
  DeviceRegion region;
  region.size = 0x4000;
  region.flags = VFIO_REGION_INFO_FLAG_READ;
  region.type = 0x80008086;
  region.subtype = 1;
  region.sparseAreas = {{0, 0x1000}, {0x2000, 0x1000}};
  d.pci().addDeviceRegion(region);
  const int fd = openGroup(d);
  vfio_device_info dinfo{.argsz = sizeof(dinfo)};
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_INFO, &dinfo), 0);
  EXPECT_EQ(dinfo.num_regions, 10U);

  // TYPE is 16 bytes and a 2-area sparse cap 16 + 2 * 16 (the struct's
  // size in <linux/vfio.h>, and §1's formula), so the chain needs 32 + 64.
  // The spec's worked example (80) counts the areas as 16 bytes in all.
  auto small = userBuffer(vfio_region_info{.argsz = 32, .index = 9}, 112);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, small.data()), 0);
  EXPECT_EQ(structAt<vfio_region_info>(small).argsz, 96U);
  EXPECT_NE(structAt<vfio_region_info>(small).flags & VFIO_REGION_INFO_FLAG_CAPS, 0U);

  auto full = userBuffer(vfio_region_info{.argsz = 96, .index = 9}, 112);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, full.data()), 0);
  EXPECT_EQ(structAt<vfio_region_info>(full).cap_offset, 32U);
  const auto type = structAt<vfio_region_info_cap_type>(full, 32);
  EXPECT_EQ(type.header.id, VFIO_REGION_INFO_CAP_TYPE);
  EXPECT_EQ(type.header.next, 48U);
  EXPECT_EQ(type.type, 0x80008086U);
  EXPECT_EQ(type.subtype, 1U);
  const auto sparse = structAt<vfio_region_info_cap_sparse_mmap>(full, 48);
  EXPECT_EQ(sparse.header.id, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
  EXPECT_EQ(sparse.header.next, 0U);
  EXPECT_EQ(sparse.nr_areas, 2U);
  const auto second = structAt<vfio_region_sparse_mmap_area>(full, 64 + 16);
  EXPECT_EQ(second.offset, 0x2000U);
  EXPECT_EQ(second.size, 0x1000U);
  EXPECT_TRUE(untouched(full, 96, 112));
}

TEST_F(DeviceUapiTest, UAPI_09_CapOffsetWithoutChainIsTheCallers) {
  const int fd = openGroup(standardD());
  vfio_region_info info{.argsz = sizeof(info), .index = 2, .cap_offset = 0x1234};
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &info), 0);
  EXPECT_EQ(info.cap_offset, 0x1234U);
  EXPECT_EQ(info.flags & VFIO_REGION_INFO_FLAG_CAPS, 0U);
}

TEST_F(DeviceUapiTest, UAPI_10_RomConfigAndVgaRegions) {
  const int fd = openGroup(standardD());
  vfio_region_info rom{.argsz = sizeof(rom), .index = VFIO_PCI_ROM_REGION_INDEX};
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &rom), 0);
  EXPECT_EQ(rom.offset, 6ULL << 40);
  EXPECT_EQ(rom.size, 0U);
  EXPECT_EQ(rom.flags, 0U);
  vfio_region_info config{.argsz = sizeof(config), .index = VFIO_PCI_CONFIG_REGION_INDEX};
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &config), 0);
  EXPECT_EQ(config.size, 4096U);
  EXPECT_EQ(config.flags, 0x3U);
  vfio_region_info vga{.argsz = sizeof(vga), .index = VFIO_PCI_VGA_REGION_INDEX};
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &vga), neg(Errno::kEINVAL));

  PciBus& bus = kernel->addBus(0x10);
  PciDeviceConfig cfg = standardDeviceConfig(0x10);
  cfg.romSize = 64 << 10;
  cfg.romImage = false;  // no 0x55AA signature
  const int romFd = openGroup(addDevice(bus, cfg));
  vfio_region_info bad{.argsz = sizeof(bad), .index = VFIO_PCI_ROM_REGION_INDEX};
  ASSERT_EQ(proc->ioctl(romFd, VFIO_DEVICE_GET_REGION_INFO, &bad), 0);
  EXPECT_EQ(bad.size, 0U);
  EXPECT_EQ(bad.flags, 0U);
}

// --- hot reset -----------------------------------------------------------------------

TEST_F(DeviceUapiTest, UAPI_11_HotResetInfoEnospcProtocol) {
  VfioDevice& d = standardD();
  const int fd = openGroup(d);
  HotResetInfoArg probe(0);
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, probe.get()), neg(Errno::kENOSPC));
  EXPECT_EQ(probe->count, 1U);
  EXPECT_EQ(probe->flags, 0U);
  HotResetInfoArg info(1);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info.get()), 0);
  ASSERT_EQ(info->count, 1U);
  EXPECT_EQ(info->devices[0].group_id, static_cast<uint32_t>(d.group()->id()));
  EXPECT_EQ(info->devices[0].segment, 0U);
  EXPECT_EQ(info->devices[0].bus, 1U);
  EXPECT_EQ(info->devices[0].devfn, 0U);
  HotResetInfoArg tiny(0);
  tiny->argsz = 11;
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, tiny.get()), neg(Errno::kEINVAL));
}

TEST_F(DeviceUapiTest, UAPI_12_RootBusHasNoHotReset) {
  PciBus& root = kernel->addBus(0x20, /*behindBridge=*/false);
  VfioDevice& d = addDevice(root, withoutFlr(0x20));
  const int fd = openGroup(d);
  HotResetInfoArg info(4);
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info.get()), neg(Errno::kENODEV));
  const uint64_t zaps = d.pci().mapping().unmapCalls();
  HotResetArg arg = hotResetArg({groupFds[&d]});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, arg.get()), neg(Errno::kENODEV));
  EXPECT_EQ(d.pci().mapping().unmapCalls(), zaps);
}

TEST_F(DeviceUapiTest, UAPI_13_HotResetInfoAndResetThroughTheCdev) {
  VfioDevice& d = standardD();
  const int iommufd = static_cast<int>(proc->open("/dev/iommu", O_RDWR));
  const auto [fd, devid] = openCdev(d, iommufd);
  HotResetInfoArg info(2);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info.get()), 0);
  EXPECT_EQ(info->flags, VFIO_PCI_HOT_RESET_FLAG_DEV_ID | VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED);
  ASSERT_EQ(info->count, 1U);
  EXPECT_EQ(info->devices[0].devid, devid);
  HotResetArg none = hotResetArg({});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, none.get()), 0);
  HotResetArg one = hotResetArg({fd});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, one.get()), neg(Errno::kEINVAL));

  // A second device E on the bus, in its own group, not bound.
  PciBus& bus = kernel->addBus(0x10);
  VfioDevice& d2 = addDevice(bus, standardDeviceConfig(0x10, 0));
  addDevice(bus, standardDeviceConfig(0x10, 1));
  const auto [fd2, devid2] = openCdev(d2, iommufd);
  HotResetInfoArg both(2);
  ASSERT_EQ(proc->ioctl(fd2, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, both.get()), 0);
  ASSERT_EQ(both->count, 2U);
  EXPECT_EQ(both->flags, VFIO_PCI_HOT_RESET_FLAG_DEV_ID);
  EXPECT_EQ(both->devices[0].devid, devid2);
  EXPECT_EQ(both->devices[1].devid, VFIO_PCI_DEVID_NOT_OWNED);
  EXPECT_EQ(both->devices[1].devfn, 1U << 3);
  EXPECT_EQ(proc->ioctl(fd2, VFIO_DEVICE_PCI_HOT_RESET, none.get()), neg(Errno::kEINVAL));
}

// A device that is not bound but shares its IOMMU group with one bound to
// the caller's iommufd is owned through the group: devid
// VFIO_PCI_DEVID_OWNED, and the reset may proceed (vfio-uapi.md §7.1, §7.2).
TEST_F(DeviceUapiTest, UAPI_13_AnUnboundDeviceOfAnOwnedGroupCountsAsOwned) {
  const int iommufd = static_cast<int>(proc->open("/dev/iommu", O_RDWR));
  PciBus& bus = kernel->addBus(0x10);
  auto d0 = kernel->addVfioDevice(bus, standardDeviceConfig(0x10, 0), {}, 7);
  auto d1 = kernel->addVfioDevice(bus, standardDeviceConfig(0x10, 1), {}, 7);
  ASSERT_TRUE(d0 && d1);
  ASSERT_EQ((*d0)->group(), (*d1)->group());
  const auto [fd, devid] = openCdev(**d0, iommufd);
  HotResetInfoArg info(2);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info.get()), 0);
  ASSERT_EQ(info->count, 2U);
  EXPECT_EQ(info->flags, VFIO_PCI_HOT_RESET_FLAG_DEV_ID | VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED);
  EXPECT_EQ(info->devices[0].devid, devid);
  EXPECT_EQ(info->devices[1].devid, VFIO_PCI_DEVID_OWNED);
  HotResetArg none = hotResetArg({});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, none.get()), 0);
}

// Where the slot can be reset, the dev_set is the slot's: a device in
// another slot of the bus neither has to be owned nor is reset.
TEST_F(DeviceUapiTest, UAPI_13_SlotResetBusHasADevSetPerSlot) {
  PciBus& bus = kernel->addBus(0x40, /*behindBridge=*/true, /*slotReset=*/true);
  VfioDevice& a = addDevice(bus, standardDeviceConfig(0x40, 0));
  PciDeviceConfig otherSlot = standardDeviceConfig(0x40);
  otherSlot.slot = 1;
  VfioDevice& b = addDevice(bus, otherSlot);
  EXPECT_NE(a.group(), b.group());
  const int fd = openGroup(a);
  HotResetInfoArg info(2);
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info.get()), 0);
  EXPECT_EQ(info->count, 1U);
  const uint64_t otherZaps = b.pci().mapping().unmapCalls();
  HotResetArg own = hotResetArg({groupFds[&a]});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, own.get()), 0);
  EXPECT_EQ(b.pci().mapping().unmapCalls(), otherZaps);
}

TEST_F(DeviceUapiTest, UAPI_14_HotResetArgumentChecks) {
  VfioDevice& d = standardD();
  const int fd = openGroup(d);
  const int group = groupFds[&d];
  const uint64_t zaps = d.pci().mapping().unmapCalls();
  HotResetArg flags = hotResetArg({group}, 1);
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, flags.get()), neg(Errno::kEINVAL));
  HotResetArg none = hotResetArg({});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, none.get()), neg(Errno::kEINVAL));
  HotResetArg two = hotResetArg({group, group});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, two.get()), neg(Errno::kEINVAL));
  HotResetArg closed = hotResetArg({999});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, closed.get()), neg(Errno::kEBADF));
  const int ev = static_cast<int>(proc->eventfd(0, 0));
  HotResetArg notGroup = hotResetArg({ev});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, notGroup.get()), neg(Errno::kEINVAL));
  EXPECT_EQ(d.pci().mapping().unmapCalls(), zaps);
  HotResetArg good = hotResetArg({group});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, good.get()), 0);
}

TEST_F(DeviceUapiTest, UAPI_15_FailedBusResetLeavesMappingsZapped) {
  VfioDevice& d = standardD();
  const int fd = openGroup(d);
  const long va = proc->mmap(0, 0x10000, prot::kRead | prot::kWrite, map::kShared, fd, 0);
  ASSERT_GT(va, 0);
  ASSERT_TRUE(proc->thread().load(static_cast<uint64_t>(va)).sig.none());
  d.pdev().bus()->setResetFailure(Errno::kENOTTY);
  HotResetArg arg = hotResetArg({groupFds[&d]});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, arg.get()), neg(Errno::kENOTTY));
  d.pdev().bus()->setResetFailure(std::nullopt);
  const uint64_t minflt = proc->getrusage().ru_minflt;
  EXPECT_TRUE(proc->thread().load(static_cast<uint64_t>(va)).sig.none());
  EXPECT_EQ(proc->getrusage().ru_minflt, minflt + 1);  // refaulted

  // The device lock held elsewhere: -EAGAIN, still after the zap.
  Mutex& lock = d.pdev().deviceLock();
  lock.lock();
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, arg.get()), neg(Errno::kEAGAIN));
  lock.unlock();
  EXPECT_TRUE(proc->thread().load(static_cast<uint64_t>(va)).sig.none());
  EXPECT_EQ(proc->getrusage().ru_minflt, minflt + 2);  // refaulted again
}

// --- FEATURE -------------------------------------------------------------------------

TEST_F(DeviceUapiTest, UAPI_16_FeatureFlagChecksAndProbeDoesNothing) {
  VfioDevice& d = standardD();
  const int fd = openGroup(d);
  const uint32_t entry = VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY;
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_PROBE | entry), 0);
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET | entry), 0);
  EXPECT_FALSE(d.pci().pmRuntimeEngaged());
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET | entry),
            neg(Errno::kEINVAL));
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_GET | entry), neg(Errno::kEINVAL));
  EXPECT_EQ(feature(fd, entry), neg(Errno::kEINVAL));
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET | entry),
            neg(Errno::kEINVAL));
  EXPECT_EQ(feature(fd, (1U << 19) | VFIO_DEVICE_FEATURE_SET | entry), neg(Errno::kEINVAL));
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_SET | entry, 7), neg(Errno::kEINVAL));
  EXPECT_FALSE(d.pci().pmRuntimeEngaged());
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_FEATURE, nullptr), neg(Errno::kEFAULT));
}

TEST_F(DeviceUapiTest, UAPI_17_UnsupportedFeaturesAreEnotty) {
  const int fd = openGroup(standardD());
  const uint32_t probe = VFIO_DEVICE_FEATURE_PROBE;
  EXPECT_EQ(feature(fd, probe | 0x1234), neg(Errno::kENOTTY));
  for (uint32_t f : {VFIO_DEVICE_FEATURE_MIGRATION, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
                     VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE})
    EXPECT_EQ(feature(fd, probe | VFIO_DEVICE_FEATURE_GET | f), neg(Errno::kENOTTY)) << f;
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_BUS_MASTER, 12),
            neg(Errno::kENOTTY));
  EXPECT_EQ(feature(fd, probe | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN),
            neg(Errno::kENOTTY));
  EXPECT_EQ(feature(fd, probe | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF),
            neg(Errno::kENOTTY));

  // With dmabuf_feature (6.19) the probe succeeds.
  TearDown();
  KernelConfig cfg;
  KernelProfile p = *KernelProfile::byName("linux-6.15");
  p.vfio.dmabufFeature = true;
  cfg.profileOverride = p;
  kernel = *Kernel::create(cfg);
  proc = Process::spawn(*kernel, "vmm");
  container = -1;
  groupFds.clear();
  const int fd619 = openGroup(standardD());
  EXPECT_EQ(feature(fd619, probe | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF), 0);
}

TEST_F(DeviceUapiTest, UAPI_18_VfTokenOfAPf) {
  PciBus& bus = kernel->addBus(0x10);
  PciDeviceConfig pf = standardDeviceConfig(0x10);
  pf.sriovPf = true;
  const int fd = openGroup(addDevice(bus, pf));
  const uint32_t token = VFIO_DEVICE_FEATURE_PCI_VF_TOKEN;
  const uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET | token), 0);
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_SET | token, 24, uuid, sizeof(uuid)), 0);
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_SET | token, 23, uuid, sizeof(uuid)),
            neg(Errno::kEINVAL));
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_GET | token, 24), neg(Errno::kEINVAL));
}

TEST_F(DeviceUapiTest, UAPI_19_LowPowerEntryAndExit) {
  VfioDevice& d = standardD();
  const int fd = openGroup(d);
  const long mapped = proc->mmap(0, 0x10000, prot::kRead | prot::kWrite, map::kShared, fd, 0);
  ASSERT_GT(mapped, 0);
  const auto va = static_cast<uint64_t>(mapped);
  ASSERT_TRUE(proc->thread().load(va).sig.none());
  const uint32_t set = VFIO_DEVICE_FEATURE_SET;
  ASSERT_EQ(feature(fd, set | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), 0);
  EXPECT_EQ(proc->thread().load(va).sig.signo, SigInfo::kSigbus);
  uint32_t v = 0;
  EXPECT_EQ(proc->pread(fd, &v, 4, 0), 4);  // pread resumes the device for the access
  EXPECT_EQ(proc->thread().load(va).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(feature(fd, set | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), neg(Errno::kEINVAL));
  EXPECT_EQ(feature(fd, set | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT), 0);
  EXPECT_EQ(feature(fd, set | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT), 0);
  EXPECT_TRUE(proc->thread().load(va).sig.none());
}

TEST_F(DeviceUapiTest, UAPI_20_WakeupEventfdChecks) {
  VfioDevice& d = standardD();
  const int fd = openGroup(d);
  const uint32_t flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP;
  const int32_t shortPayload = 3;
  EXPECT_EQ(feature(fd, flags, 12, &shortPayload, 4), neg(Errno::kEINVAL));
  vfio_device_low_power_entry_with_wakeup w{.wakeup_eventfd = -1};
  EXPECT_EQ(feature(fd, flags, 16, &w, sizeof(w)), neg(Errno::kEINVAL));
  w.wakeup_eventfd = 999;
  EXPECT_EQ(feature(fd, flags, 16, &w, sizeof(w)), neg(Errno::kEBADF));
  w.wakeup_eventfd = fd;  // a file, not an eventfd
  EXPECT_EQ(feature(fd, flags, 16, &w, sizeof(w)), neg(Errno::kEINVAL));
  EXPECT_FALSE(d.pci().pmRuntimeEngaged());
  w.wakeup_eventfd = static_cast<int32_t>(proc->eventfd(0, 0));
  EXPECT_EQ(feature(fd, flags, 16, &w, sizeof(w)), 0);
  EXPECT_TRUE(d.pci().pmRuntimeEngaged());
  // vfio-pci allowed runtime PM at bind: the ioctl's put suspended D.
  EXPECT_TRUE(d.pci().runtimeSuspended());
  EXPECT_EQ(d.pdev().powerState(), PciPowerState::kD3hot);
  uint64_t count = 0;
  EXPECT_EQ(proc->read(w.wakeup_eventfd, &count, sizeof(count)), neg(Errno::kEAGAIN));
}

// A config pread resumes the suspended device; the resume signals the
// wakeup eventfd and leaves low power, so the mapping faults in again
// without LOW_POWER_EXIT.
TEST_F(DeviceUapiTest, UAPI_20_RuntimeResumeSignalsTheWakeupEventfd) {
  VfioDevice& d = standardD();
  const int fd = openGroup(d);
  const uint64_t va = mapBar0(fd);
  const int efd = enterLowPowerWithWakeup(fd);
  ASSERT_TRUE(d.pci().runtimeSuspended());
  EXPECT_EQ(proc->thread().load(va).sig.signo, SigInfo::kSigbus);
  readCommand(fd);
  EXPECT_EQ(eventfdCount(efd), 1U);
  EXPECT_FALSE(d.pci().pmRuntimeEngaged());
  EXPECT_FALSE(d.pci().runtimeSuspended());
  EXPECT_EQ(d.pdev().powerState(), PciPowerState::kD0);
  EXPECT_EQ(proc->thread().load(va).sig.signo, 0) << "no EXIT needed";
}

// vfio_pci_rw() refuses an index past the regions before it resumes the
// device (vfio-bar-mapping.md §10 steps 1-2): no wakeup, still suspended.
TEST_F(DeviceUapiTest, UAPI_20_PreadOfAnUnknownRegionDoesNotResume) {
  VfioDevice& d = standardD();
  const int fd = openGroup(d);
  const int efd = enterLowPowerWithWakeup(fd);
  ASSERT_TRUE(d.pci().runtimeSuspended());
  uint32_t v = 0;
  EXPECT_EQ(proc->pread(fd, &v, 4, VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_NUM_REGIONS)),
            neg(Errno::kEINVAL));
  EXPECT_EQ(proc->pwrite(fd, &v, 4, VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_NUM_REGIONS + 3)),
            neg(Errno::kEINVAL));
  EXPECT_EQ(eventfdCount(efd), 0U);
  EXPECT_TRUE(d.pci().runtimeSuspended());
  EXPECT_TRUE(d.pci().pmRuntimeEngaged());
}

// A hot reset first resumes every device of the dev_set
// (vfio_pci_dev_set_pm_runtime_get): a suspended one with a wakeup eventfd
// signals it and leaves low power, although the ioctl went to its sibling.
TEST_F(DeviceUapiTest, UAPI_20_HotResetResumesASuspendedSibling) {
  PciBus& bus = kernel->addBus(0x10);
  VfioDevice& d1 = addDevice(bus, standardDeviceConfig(0x10, 0));
  VfioDevice& d2 = addDevice(bus, standardDeviceConfig(0x10, 1));
  const int iommufd = static_cast<int>(proc->open("/dev/iommu", O_RDWR));
  const int fd1 = openCdev(d1, iommufd).first;
  const int fd2 = openCdev(d2, iommufd).first;
  const int efd = enterLowPowerWithWakeup(fd2);
  ASSERT_TRUE(d2.pci().runtimeSuspended());
  HotResetArg none = hotResetArg({});
  EXPECT_EQ(proc->ioctl(fd1, VFIO_DEVICE_PCI_HOT_RESET, none.get()), 0);
  EXPECT_EQ(eventfdCount(efd), 1U);
  EXPECT_FALSE(d2.pci().runtimeSuspended());
  EXPECT_FALSE(d2.pci().pmRuntimeEngaged());
  EXPECT_EQ(d2.pdev().powerState(), PciPowerState::kD0);
}

// prefault refills a device once after a hot reset, also when the reset
// first resumed it (listed for a refill by the resume and again by the
// reset's own zap).
TEST_F(DeviceUapiTest, UAPI_20_HotResetRefillsAResumedSiblingOnce) {
  boot("linux-6.12", DesignKind::kPrefault);
  PciBus& bus = kernel->addBus(0x10);
  VfioDevice& d1 = addDevice(bus, standardDeviceConfig(0x10, 0));
  VfioDevice& d2 = addDevice(bus, standardDeviceConfig(0x10, 1));
  const int iommufd = static_cast<int>(proc->open("/dev/iommu", O_RDWR));
  const int fd1 = openCdev(d1, iommufd).first;
  const int fd2 = openCdev(d2, iommufd).first;
  (void)mapBar0(fd2);
  (void)enterLowPowerWithWakeup(fd2);
  ASSERT_TRUE(d2.pci().runtimeSuspended());
  const CounterSnapshot before = CounterSet::current().snapshot();
  HotResetArg none = hotResetArg({});
  EXPECT_EQ(proc->ioctl(fd1, VFIO_DEVICE_PCI_HOT_RESET, none.get()), 0);
  EXPECT_EQ(CounterSet::current().snapshot().since(before).get("vfio.prefault.refills"), 2U);
}

// With power/control "on" the device never suspends: no signal, and the
// mapping stays unusable until LOW_POWER_EXIT.
TEST_F(DeviceUapiTest, UAPI_20_RuntimePmForbiddenNeverSignals) {
  VfioDevice& d = standardD();
  d.pci().setRuntimePmAllowed(false);
  const int fd = openGroup(d);
  const uint64_t va = mapBar0(fd);
  const int efd = enterLowPowerWithWakeup(fd);
  EXPECT_FALSE(d.pci().runtimeSuspended());
  EXPECT_EQ(d.pdev().powerState(), PciPowerState::kD0);
  readCommand(fd);
  EXPECT_EQ(eventfdCount(efd), 0U);
  EXPECT_EQ(proc->thread().load(va).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT), 0);
  EXPECT_EQ(proc->thread().load(va).sig.signo, 0);
}

// vfio_pci_core_register_device() gives the probe's usage count back, so
// a bound device nobody has open runtime-suspends: D3hot with a PM
// capability. The first open resumes it, the last close lets it suspend
// again; each transition takes memory_lock for write in vfio's callback.
// disable_idle_d3 and power/control "on" keep it in D0.
TEST_F(DeviceUapiTest, UAPI_20_AnUnopenedDeviceIdlesInD3hot) {
  VfioDevice& d = standardD();
  EXPECT_TRUE(d.pci().runtimeSuspended());
  EXPECT_EQ(d.pdev().powerState(), PciPowerState::kD3hot);
  EXPECT_FALSE(d.pdev().memoryDecodeEnabled());
  EXPECT_EQ(d.pci().memoryLockWriteCount(), 1U);  // the suspend at bind
  const int fd = openGroup(d);
  EXPECT_FALSE(d.pci().runtimeSuspended());
  EXPECT_EQ(d.pdev().powerState(), PciPowerState::kD0);
  EXPECT_EQ(d.pci().memoryLockWriteCount(), 2U);  // the resume at open
  uint16_t cmd = 0;
  EXPECT_EQ(proc->pread(fd, &cmd, 2, (7ULL << 40) + kPciCommand), 2);
  EXPECT_NE(cmd & kPciCommandMemory, 0);
  ASSERT_EQ(proc->close(fd), 0);
  EXPECT_TRUE(d.pci().runtimeSuspended());
  EXPECT_EQ(d.pdev().powerState(), PciPowerState::kD3hot);
  EXPECT_EQ(d.pci().memoryLockWriteCount(), 3U);  // the suspend at close

  PciBus& bus = kernel->addBus(0x10);
  PciDeviceConfig noPm = standardDeviceConfig(0x10);
  noPm.pm.reset();
  VfioDevice& bare = addDevice(bus, noPm);
  EXPECT_TRUE(bare.pci().runtimeSuspended());  // pci_target_state(): D0 without PM
  EXPECT_EQ(bare.pdev().powerState(), PciPowerState::kD0);

  VfioDevice& on = addDevice(kernel->addBus(0x11), standardDeviceConfig(0x11));
  on.pci().setRuntimePmAllowed(false);
  EXPECT_FALSE(on.pci().runtimeSuspended());
  EXPECT_EQ(on.pdev().powerState(), PciPowerState::kD0);

  TearDown();
  boot("linux-6.12", KernelConfig{}.design, DesignOptions{.disableIdleD3 = true});
  VfioDevice& kept = standardD();
  EXPECT_FALSE(kept.pci().runtimeSuspended());
  EXPECT_EQ(kept.pdev().powerState(), PciPowerState::kD0);
  ASSERT_EQ(proc->close(openGroup(kept)), 0);
  EXPECT_EQ(kept.pdev().powerState(), PciPowerState::kD0);
}

TEST_F(DeviceUapiTest, UAPI_21_LowPowerWithoutAPmCapability) {
  PciBus& bus = kernel->addBus(0x10);
  PciDeviceConfig noPm = standardDeviceConfig(0x10);
  noPm.pm.reset();
  VfioDevice& d = addDevice(bus, noPm);
  const int fd = openGroup(d);
  const long mapped = proc->mmap(0, 0x10000, prot::kRead | prot::kWrite, map::kShared, fd, 0);
  ASSERT_GT(mapped, 0);
  EXPECT_EQ(feature(fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), 0);
  EXPECT_EQ(proc->thread().load(static_cast<uint64_t>(mapped)).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(d.pdev().powerState(), PciPowerState::kD0);
}

// Null and short arguments are what a C caller can get wrong: -EFAULT or
// -EINVAL, never a crash (issue 17, finding 11).
TEST_F(DeviceUapiTest, Finding11_NullIoctlArgumentsAreEfault) {
  VfioDevice& d = standardD();
  const int fd = openGroup(d);
  for (unsigned long req :
       {VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_GET_IRQ_INFO,
        VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, VFIO_DEVICE_PCI_HOT_RESET, VFIO_DEVICE_FEATURE,
        VFIO_DEVICE_BIND_IOMMUFD})
    EXPECT_EQ(proc->ioctl(fd, req, nullptr), neg(Errno::kEFAULT)) << req;
  const int group = groupFds[&d];
  EXPECT_EQ(proc->ioctl(group, VFIO_GROUP_SET_CONTAINER, nullptr), neg(Errno::kEFAULT));
  EXPECT_EQ(proc->ioctl(group, VFIO_GROUP_GET_DEVICE_FD, nullptr), neg(Errno::kEFAULT));
  EXPECT_EQ(proc->ioctl(fd, 0x3b99, nullptr), neg(Errno::kENOTTY));
}

}  // namespace
}  // namespace vfiomm
