// The vfio dma-buf generation (dma-mapping.md §4; conformance IDs DMABUF-xx
// of §8) on the 6.19 profile (linux-6.15 with dmabuf_feature): Standard
// device D opened through its cdev, bound to an iommufd and attached to one
// IOAS, with a peer device on another bus attached to the same IOAS (its
// own domain: "every domain" has two). D exports BAR2 (2 GiB at
// 0x40_0000_0000) as a dma-buf, and the IOAS imports it with
// IOMMU_IOAS_MAP_FILE. DMABUF-02's memfd clause maps a memfd the same way;
// DMABUF-07 is a proposal (not merged), tested with its design option.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "abi/iommufd.h"
#include "base/byte_units.h"
#include "dmabuf/dma_buf.h"
#include "hw/cpu.h"
#include "iommu/iommu.h"
#include "iommu/iommu_domain.h"
#include "kernel/kernel.h"
#include "lock_order.h"
#include "mm/fault.h"
#include "mm/mm.h"
#include "mm/system_ram.h"
#include "mm/user_struct.h"
#include "mm/vm_flags.h"
#include "pci/pci_regs.h"
#include "pci/standard_device.h"
#include "sync/lockdep.h"
#include "uapi/invariant_monitor.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_pci_dmabuf.h"

namespace vfiomm {
namespace {

using namespace vfiomm::uapi;
using State = VfioPciDmaBuf::State;

constexpr uint64_t kConfigOffset = uint64_t{7} << 40;
constexpr uint32_t kBar2 = 2;
constexpr int kOCloexec = 02000000;
constexpr uint32_t kRw = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
constexpr uint32_t kFixedRw = IOMMU_IOAS_MAP_FIXED_IOVA | kRw;
constexpr uint64_t kIova = 0x1'0000'0000;  // 1 GiB aligned: BAR2 maps with 1 GiB IOPTEs
constexpr uint32_t kGetDmaBuf = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF;

KernelProfile linux619() {
  KernelProfile p = *KernelProfile::byName("linux-6.15");
  p.vfio.dmabufFeature = true;
  return p;
}

class DmaBufTest : public ::testing::Test {
 protected:
  // Every nesting the test made is in docs/architecture.md's lock order.
  void TearDown() override {
    if (kernel == nullptr) return;
    const KernelContext::Scope in(kernel->context());
    EXPECT_EQ(testing::DocumentedLockOrder().undocumented(), std::vector<std::string>{});
  }
  void SetUp() override { boot(linux619()); }

  void boot(KernelProfile profile, DesignOptions options = {}) {
    proc.reset();
    kernel.reset();
    KernelConfig cfg;
    cfg.profileOverride = std::move(profile);
    cfg.designOptions = options;
    kernel = *Kernel::create(cfg);
    dev = &kernel->addStandardDevice();
    peer = *kernel->addVfioDevice(kernel->addBus(0x20), standardDeviceConfig(0x20));
    proc = Process::spawn(*kernel, "qemu");
    iommufd = static_cast<int>(proc->open("/dev/iommu", O_RDWR));
    ASSERT_GE(iommufd, 0);
    iommu_ioas_alloc a{.size = sizeof(a)};
    ASSERT_EQ(proc->ioctl(iommufd, IOMMU_IOAS_ALLOC, &a), 0);
    ioas = a.out_ioas_id;
    fd = bindAndAttach(*dev);
    peerFd = bindAndAttach(*peer);
  }

  int bindAndAttach(VfioDevice& d) {
    const int f = static_cast<int>(proc->open(kernel->cdevPath(d), O_RDWR));
    EXPECT_GE(f, 0);
    vfio_device_bind_iommufd bind{.argsz = sizeof(bind), .iommufd = iommufd};
    EXPECT_EQ(proc->ioctl(f, VFIO_DEVICE_BIND_IOMMUFD, &bind), 0);
    vfio_device_attach_iommufd_pt at{.argsz = sizeof(at), .pt_id = ioas};
    EXPECT_EQ(proc->ioctl(f, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at), 0);
    return f;
  }

  // VFIO_DEVICE_FEATURE with the dma-buf payload; `argsz` 0 means exact.
  long exportBuf(uint32_t featureFlags, uint32_t region,
                 const std::vector<vfio_region_dma_range>& ranges, uint32_t flags = 0,
                 uint32_t argsz = 0, int device = -1) {
    vfio_device_feature_dma_buf req;
    req.region_index = region;
    req.open_flags = O_RDWR | kOCloexec;
    req.flags = flags;
    req.nr_ranges = static_cast<uint32_t>(ranges.size());
    const size_t payload = sizeof(req) + ranges.size() * sizeof(vfio_region_dma_range);
    std::vector<uint64_t> buf((sizeof(vfio_device_feature) + payload + 7) / 8);
    auto* bytes = reinterpret_cast<uint8_t*>(buf.data());
    const uint32_t header[2] = {argsz != 0 ? argsz : static_cast<uint32_t>(8 + payload),
                                featureFlags};
    std::memcpy(bytes, header, sizeof(header));
    std::memcpy(bytes + 8, &req, sizeof(req));
    if (!ranges.empty())
      std::memcpy(bytes + 8 + sizeof(req), ranges.data(), ranges.size() * sizeof(ranges[0]));
    return proc->ioctl(device >= 0 ? device : fd, VFIO_DEVICE_FEATURE, bytes);
  }
  int exportBar2() {
    const long b = exportBuf(kGetDmaBuf, kBar2, {{0, 2 * kGiB}});
    EXPECT_GE(b, 0);
    return static_cast<int>(b);
  }
  long mapFile(int bufFd, uint64_t iova, uint64_t length = 2 * kGiB, uint64_t start = 0,
               uint32_t flags = kFixedRw, uint64_t* chosen = nullptr) {
    iommu_ioas_map_file m{.size = sizeof(m),
                          .flags = flags,
                          .ioas_id = ioas,
                          .fd = bufFd,
                          .start = start,
                          .length = length,
                          .iova = iova};
    const long r = proc->ioctl(iommufd, IOMMU_IOAS_MAP_FILE, &m);
    if (chosen != nullptr) *chosen = m.iova;
    return r;
  }
  long ioasUnmap(uint64_t iova, uint64_t length, uint64_t* removed = nullptr) {
    iommu_ioas_unmap u{.size = sizeof(u), .ioas_id = ioas, .iova = iova, .length = length};
    const long r = proc->ioctl(iommufd, IOMMU_IOAS_UNMAP, &u);
    if (removed != nullptr) *removed = u.length;
    return r;
  }
  // IOAS_MAP of fresh anonymous memory at a fixed IOVA.
  long mapAnonAt(uint64_t iova, uint64_t length) {
    const long va =
        proc->mmap(0, length, prot::kRead | prot::kWrite, map::kPrivate | map::kAnonymous, -1, 0);
    EXPECT_GT(va, 0);
    iommu_ioas_map m{.size = sizeof(m),
                     .flags = kFixedRw,
                     .ioas_id = ioas,
                     .user_va = static_cast<uint64_t>(va),
                     .length = length,
                     .iova = iova};
    return proc->ioctl(iommufd, IOMMU_IOAS_MAP, &m);
  }

  State state(int bufFd) {
    std::shared_ptr<DmaBuf> b = proc->dmaBuf(bufFd);
    EXPECT_NE(b, nullptr);
    return static_cast<VfioPciDmaBuf&>(b->ops()).state();
  }
  IommuDomain& domainOf(VfioDevice& d) { return *kernel->iommu().domainFor(d.pdev()); }
  // The IOPTEs of both domains.
  uint64_t ioptes() {
    return domainOf(*dev).iopteCounts().total() + domainOf(*peer).iopteCounts().total();
  }
  // Whether the peer's DMA at `iova` gets through the IOMMU.
  bool peerDmaReaches(uint64_t iova) {
    return kernel->iommu().dmaRead(peer->pdev(), iova, 4).has_value();
  }

  void configWrite(uint64_t off, uint32_t value) {
    ASSERT_EQ(proc->pwrite(fd, &value, 2, kConfigOffset + off), 2);
  }
  uint32_t configRead(uint64_t off) {
    uint32_t v = 0;
    EXPECT_EQ(proc->pread(fd, &v, 2, kConfigOffset + off), 2);
    return v;
  }
  void setMemory(bool on) {
    const uint32_t cmd = configRead(kPciCommand);
    configWrite(kPciCommand, on ? (cmd | kPciCommandMemory) : (cmd & ~uint32_t{kPciCommandMemory}));
  }
  void setPowerState(uint32_t state) {
    const uint64_t pmcsr = *dev->pdev().pmCapOffset() + kPciPmCtrl;
    configWrite(pmcsr, (configRead(pmcsr) & ~uint32_t{kPciPmCtrlStateMask}) | state);
  }
  long lowPower(uint32_t feature) {
    vfio_device_feature f{.argsz = sizeof(f), .flags = VFIO_DEVICE_FEATURE_SET | feature};
    return proc->ioctl(fd, VFIO_DEVICE_FEATURE, &f);
  }

  std::unique_ptr<Kernel> kernel;
  VfioDevice* dev = nullptr;
  VfioDevice* peer = nullptr;
  std::shared_ptr<Process> proc;
  int iommufd = -1;
  uint32_t ioas = 0;
  int fd = -1;
  int peerFd = -1;
};

TEST_F(DmaBufTest, DMABUF_01_ExportChecksInOrder) {
  EXPECT_EQ(exportBuf(VFIO_DEVICE_FEATURE_PROBE | kGetDmaBuf, kBar2, {}), 0) << "PROBE|GET";
  EXPECT_EQ(
      exportBuf(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF, kBar2, {{0, 2 * kGiB}}), -22)
      << "SET";
  EXPECT_EQ(exportBuf(kGetDmaBuf, kBar2, {{0, 2 * kGiB}}, 0, 8 + 15), -22) << "short argsz";
  EXPECT_EQ(exportBuf(kGetDmaBuf, kBar2, {}), -22) << "nr_ranges 0";
  EXPECT_EQ(exportBuf(kGetDmaBuf, kBar2, {{0, 2 * kGiB}}, 1), -22) << "flags 1";
  EXPECT_EQ(exportBuf(kGetDmaBuf, 6, {{0, 4 * kKiB}}), -19) << "region_index 6";
  EXPECT_EQ(exportBuf(kGetDmaBuf, kBar2, {{0x800, 4 * kKiB}}), -22) << "offset not page aligned";
  EXPECT_EQ(exportBuf(kGetDmaBuf, kBar2, {{0, 0}}), -22) << "length 0";
  EXPECT_EQ(exportBuf(kGetDmaBuf, kBar2, {{0, 2 * kGiB + 4 * kKiB}}), -22) << "past BAR2's end";
  EXPECT_EQ(exportBuf(kGetDmaBuf, 4, {{0, 4 * kKiB}}), -22) << "the I/O BAR has no P2P provider";
  EXPECT_EQ(exportBuf(kGetDmaBuf, kBar2, {{~uint64_t{0} - 4 * kKiB + 1, 4 * kKiB}}), -75)
      << "start + offset wraps";
  EXPECT_EQ(exportBuf(kGetDmaBuf, kBar2, {{0, 4 * kKiB}, {uint64_t{1} << 63, uint64_t{1} << 63}}),
            -22)
      << "a length sum with DMA_IOVA_USE_SWIOTLB, before the BAR's bounds";

  const long b = exportBuf(kGetDmaBuf, kBar2, {{0, 2 * kGiB}});
  ASSERT_GE(b, 0);
  const int bufFd = static_cast<int>(b);
  EXPECT_EQ(state(bufFd), State::kUsable);
  EXPECT_EQ(proc->dmaBuf(bufFd)->size(), 2 * kGiB);
  EXPECT_EQ(proc->mmap(0, 4 * kKiB, prot::kRead, map::kShared, bufFd, 0), -22) << "no mmap op";
  // dma_buf_mmap_internal() is the file's ->mmap: do_mmap() has already
  // replaced a MAP_FIXED range when it refuses.
  const long anon = proc->mmap(0, 4 * kKiB, prot::kRead, map::kPrivate | map::kAnonymous, -1, 0);
  ASSERT_GT(anon, 0);
  EXPECT_EQ(proc->mmap(static_cast<uint64_t>(anon), 4 * kKiB, prot::kRead,
                       map::kShared | map::kFixed, bufFd, 0),
            -22);
  EXPECT_EQ(proc->mm().mapCount(), 0U) << "the anonymous mapping is gone";
}

TEST_F(DmaBufTest, DMABUF_01_WithoutTheFeatureItIsEnotty) {
  boot(*KernelProfile::byName("linux-6.15"));
  EXPECT_EQ(exportBuf(VFIO_DEVICE_FEATURE_PROBE | kGetDmaBuf, kBar2, {}), -25);
  EXPECT_EQ(exportBuf(kGetDmaBuf, kBar2, {{0, 2 * kGiB}}), -25);
}

TEST_F(DmaBufTest, DMABUF_02_MapFileMapsBar2WithoutPinning) {
  const int bufFd = exportBar2();
  const uint64_t lockedBefore = proc->mm().lockedVm();
  EXPECT_EQ(mapFile(bufFd, kIova, 2 * kGiB, 0, kFixedRw | (1U << 3)), -95) << "unknown flag";
  EXPECT_EQ(mapFile(bufFd, ~uint64_t{0}), -75) << "iova at ULONG_MAX";
  EXPECT_EQ(mapFile(bufFd, kIova, 2 * kGiB, 0, IOMMU_IOAS_MAP_FIXED_IOVA), -22)
      << "neither R nor W";
  EXPECT_EQ(mapFile(bufFd, kIova, 0), -22) << "length 0";
  EXPECT_EQ(mapFile(99, kIova), -9) << "no such fd";
  EXPECT_EQ(mapFile(bufFd, kIova, 2 * kGiB, 4 * kKiB), -22) << "past the buffer's end";

  ASSERT_EQ(mapFile(bufFd, kIova), 0);
  for (VfioDevice* d : {dev, peer}) {
    IommuDomain& dom = domainOf(*d);
    EXPECT_EQ(dom.iopteCounts().size1G, 2U) << d->name();
    EXPECT_EQ(dom.iopteCounts().total(), 2U) << d->name();
    EXPECT_EQ(dom.iovaToPhys(kIova + 0x1000), PhysAddr(kStandardBar2Start + 0x1000));
    EXPECT_EQ(dom.iovaToPhys(kIova + 2 * kGiB - 4), PhysAddr(kStandardBar2Start + 2 * kGiB - 4));
  }
  // The peer's write lands in BAR2: D reads it back through its fd.
  ASSERT_TRUE(kernel->iommu().dmaWrite(peer->pdev(), kIova + 0x40, 4, 0xdeadbeef));
  uint32_t v = 0;
  ASSERT_EQ(proc->pread(fd, &v, 4, (uint64_t{kBar2} << 40) + 0x40), 4);
  EXPECT_EQ(v, 0xdeadbeefU);
  EXPECT_EQ(proc->mm().lockedVm(), lockedBefore) << "nothing pinned or accounted";
  EXPECT_EQ(kernel->user().lockedVm(), 0U) << "IOPT_PAGES_ACCOUNT_NONE for a dma-buf";
  EXPECT_EQ(proc->mm().pinnedVm(), 0U);

  // A buffer of two ranges is refused by vfio's interconnect.
  const long two = exportBuf(kGetDmaBuf, kBar2, {{0, 4 * kKiB}, {8 * kKiB, 4 * kKiB}});
  ASSERT_GE(two, 0);
  EXPECT_EQ(mapFile(static_cast<int>(two), 0x2'0000'0000, 8 * kKiB), -95);
  // Not a dma-buf: the file itself, whose pages memfd_pin_folios() refuses
  // unless it is shmem or hugetlbfs.
  EXPECT_EQ(mapFile(peerFd, 0x2'0000'0000, 8 * kKiB), -22);
  EXPECT_EQ(ioptes(), 4U) << "the refused maps left nothing";

  uint64_t chosen = 0;
  ASSERT_EQ(mapFile(bufFd, 0, 2 * kGiB, 0, kRw, &chosen), 0) << "a second area of the buffer";
  EXPECT_EQ(chosen % (2 * kGiB), 0U) << "an IOVA aligned to the length, for 1 GiB IOPTEs";
  EXPECT_EQ(domainOf(*dev).iopteCounts().size1G, 4U);
}

// "A memfd still works as before": MAP_FILE of a memfd pins its shmem pages
// (frames of system RAM) and maps them; a range past its size is refused
// (shmem has no page there: -EINVAL) and leaves nothing.
TEST_F(DmaBufTest, DMABUF_02_AMemfdStillWorks) {
  const int mfd = static_cast<int>(proc->memfdCreate("guest-ram", MFD_CLOEXEC));
  ASSERT_GE(mfd, 0);
  ASSERT_EQ(proc->ftruncate(mfd, 64 * kKiB), 0);
  constexpr uint64_t kMemfdIova = 0x3'0000'0000;
  EXPECT_EQ(mapFile(mfd, kMemfdIova, 128 * kKiB), -22) << "past the memfd's size";
  EXPECT_EQ(ioptes(), 0U);
  ASSERT_EQ(mapFile(mfd, kMemfdIova, 64 * kKiB), 0);
  for (VfioDevice* d : {dev, peer}) {
    const std::optional<PhysAddr> pa = domainOf(*d).iovaToPhys(kMemfdIova + 0x1004);
    ASSERT_TRUE(pa.has_value()) << d->name();
    EXPECT_GE(pa->value(), SystemRam::kBase);
    EXPECT_LT(pa->value(), SystemRam::kBase + SystemRam::kSize) << "a shmem page in system RAM";
  }
  EXPECT_EQ(kernel->user().lockedVm(), 16U) << "pinned and charged as user memory is";
  EXPECT_EQ(proc->mm().pinnedVm(), 16U);
  // The same pages through a second area: the file's, not new ones; each
  // map has iopt_pages of its own, which charge their pins again.
  ASSERT_EQ(mapFile(mfd, kMemfdIova + kGiB, 64 * kKiB), 0);
  EXPECT_EQ(kernel->user().lockedVm(), 32U);
  EXPECT_EQ(domainOf(*dev).iovaToPhys(kMemfdIova + kGiB + 0x1004),
            domainOf(*dev).iovaToPhys(kMemfdIova + 0x1004));
  // A device's write lands in the page the other device reads.
  ASSERT_TRUE(kernel->iommu().dmaWrite(dev->pdev(), kMemfdIova + 0x40, 4, 0x5a5a5a5a));
  auto back = kernel->iommu().dmaRead(peer->pdev(), kMemfdIova + kGiB + 0x40, 4);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, 0x5a5a5a5aU);
  uint64_t removed = 0;
  EXPECT_EQ(ioasUnmap(kMemfdIova, 64 * kKiB, &removed), 0);
  EXPECT_EQ(removed, 64 * kKiB);
  EXPECT_FALSE(peerDmaReaches(kMemfdIova));
  EXPECT_EQ(kernel->user().lockedVm(), 16U);
}

// IOMMU_IOAS_MAP_FILE arrived in v6.13: earlier iommufd does not know the
// ioctl number.
TEST_F(DmaBufTest, IoasMapFileIsEnottyBefore6_13) {
  for (const char* name : {"linux-6.12", "linux-6.15"}) {
    boot(*KernelProfile::byName(name));
    const int mfd = static_cast<int>(proc->memfdCreate("guest-ram", 0));
    ASSERT_EQ(proc->ftruncate(mfd, 64 * kKiB), 0);
    EXPECT_EQ(mapFile(mfd, 0x3'0000'0000, 64 * kKiB),
              std::string_view(name) == "linux-6.12" ? -25 : 0)
        << name;
  }
}

// DMABUF-07, a PROPOSAL (Matt Evans, 2026, not merged): with the option
// the dma-buf fd mmaps BAR2 and SIGBUSes while revoked; the revoke feature
// revokes for good (0, then -EBADFD), refuses another device's buffer
// (-ENODEV), and afterwards mmap and import are -ENODEV.
TEST_F(DmaBufTest, DMABUF_07_ProposalMmapAndPermanentRevoke) {
  const auto revoke = [&](int deviceFd, int bufFd) {
    // vfio_device_feature's argsz and flags, then the payload.
    uint32_t f[3] = {sizeof(f), VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE, 0};
    vfio_device_feature_dma_buf_revoke req{.dmabuf_fd = bufFd};
    std::memcpy(&f[2], &req, sizeof(req));
    return proc->ioctl(deviceFd, VFIO_DEVICE_FEATURE, f);
  };
  const auto mmapBuf = [&](int bufFd) {
    return proc->mmap(0, 64 * kKiB, prot::kRead | prot::kWrite, map::kShared, bufFd, 0);
  };
  // The merged code: no mmap op, no revoke feature.
  int bufFd = exportBar2();
  EXPECT_EQ(mmapBuf(bufFd), -22);
  EXPECT_EQ(revoke(fd, bufFd), -25);

  DesignOptions proposal;
  proposal.proposalDmabufMmapRevoke = true;
  boot(linux619(), proposal);
  bufFd = exportBar2();
  const long va = mmapBuf(bufFd);
  ASSERT_GT(va, 0);
  const uint64_t at = static_cast<uint64_t>(va) + 0x40;
  const uint32_t pattern = 0xcafef00d;
  ASSERT_EQ(proc->pwrite(fd, &pattern, 4, (uint64_t{kBar2} << 40) + 0x40), 4);
  AccessResult r = proc->thread().load(at);
  EXPECT_EQ(r.sig.signo, 0);
  EXPECT_EQ(r.value, pattern) << "the mapping reaches BAR2";
  ASSERT_EQ(mapFile(bufFd, kIova), 0);

  setMemory(false);
  EXPECT_EQ(proc->thread().load(at).sig.signo, SigInfo::kSigbus) << "revoked: zapped, SIGBUS";
  EXPECT_GT(mmapBuf(bufFd), 0) << "a revoked buffer still maps";
  setMemory(true);
  EXPECT_EQ(proc->thread().load(at).sig.signo, 0) << "un-revoked: faults work again";

  EXPECT_EQ(revoke(fd, 99), -9) << "no such fd";
  EXPECT_EQ(revoke(fd, peerFd), -22) << "not a dma-buf";
  EXPECT_EQ(revoke(peerFd, bufFd), -19) << "another device's buffer";
  EXPECT_EQ(revoke(fd, bufFd), 0);
  EXPECT_EQ(state(bufFd), State::kPermanentlyRevoked);
  EXPECT_EQ(ioptes(), 0U) << "iommufd's IOPTEs went with the revoke";
  EXPECT_EQ(proc->thread().load(at).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(revoke(fd, bufFd), -77) << "EBADFD: revoked for good already";
  EXPECT_EQ(mmapBuf(bufFd), -19);
  EXPECT_EQ(mapFile(bufFd, 0x2'0000'0000), -19) << "attach refused";
  setMemory(false);
  setMemory(true);
  EXPECT_EQ(state(bufFd), State::kPermanentlyRevoked) << "MEM=1 does not bring it back";
  EXPECT_EQ(proc->thread().load(at).sig.signo, SigInfo::kSigbus);
}

// DMABUF-07's second PROPOSAL (Matt Evans, 2026, not merged): with the
// option a BAR mmap of the device fd maps a dma-buf exported for the BAR:
// maps names it, a MEM clear zaps it through the dma-buf's address space
// (a zap of the device's would miss the VMA and leave the PTE), faults
// SIGBUS until MEM is back, then refault. Without the option the VMA is the
// device fd's, as in the merged code.
TEST_F(DmaBufTest, DMABUF_07_ProposalBarMmapIsDmaBufBacked) {
  const uint64_t offset = 64 * kKiB;
  const auto mmapBar2 = [&] {
    return proc->mmap(0, 64 * kKiB, prot::kRead | prot::kWrite, map::kShared, fd,
                      (uint64_t{kBar2} << 40) + offset);
  };
  long va = mmapBar2();
  ASSERT_GT(va, 0);
  EXPECT_EQ(proc->maps().find("/dmabuf:"), std::string::npos) << proc->maps();
  EXPECT_NE(proc->maps().find(kernel->cdevPath(*dev)), std::string::npos) << proc->maps();

  DesignOptions proposal;
  proposal.proposalBarMmapDmabuf = true;
  boot(linux619(), proposal);
  va = mmapBar2();
  ASSERT_GT(va, 0);
  const std::string maps = proc->maps();
  EXPECT_NE(maps.find(" 00010000 00:00 0 "), std::string::npos) << maps;
  EXPECT_NE(maps.find("/dmabuf:" + dev->pdev().name() + " BAR2\n"), std::string::npos) << maps;
  EXPECT_EQ(maps.find(kernel->cdevPath(*dev)), std::string::npos) << maps;

  const uint64_t at = static_cast<uint64_t>(va) + 0x40;
  const uint32_t pattern = 0xcafef00d;
  ASSERT_EQ(proc->pwrite(fd, &pattern, 4, (uint64_t{kBar2} << 40) + offset + 0x40), 4);
  AccessResult r = proc->thread().load(at);
  EXPECT_EQ(r.sig.signo, 0);
  EXPECT_EQ(r.value, pattern) << "the VMA reaches BAR2 at the mmap's offset";

  setMemory(false);
  EXPECT_EQ(proc->thread().load(at).sig.signo, SigInfo::kSigbus)
      << "revoked: zapped through the dma-buf, SIGBUS";
  setMemory(true);
  r = proc->thread().load(at);
  EXPECT_EQ(r.sig.signo, 0) << "usable again: the fault maps it";
  EXPECT_EQ(r.value, pattern);

  // The other zap triggers revoke it the same way.
  setPowerState(3);
  EXPECT_EQ(proc->thread().load(at).sig.signo, SigInfo::kSigbus) << "D3hot";
  setPowerState(0);
  EXPECT_EQ(proc->thread().load(at).sig.signo, 0) << "D0";
  ASSERT_EQ(lowPower(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), 0);
  EXPECT_EQ(proc->thread().load(at).sig.signo, SigInfo::kSigbus) << "low power";
  ASSERT_EQ(lowPower(VFIO_DEVICE_FEATURE_LOW_POWER_EXIT), 0);
  EXPECT_EQ(proc->thread().load(at).sig.signo, 0) << "low power exit";
}

TEST_F(DmaBufTest, DMABUF_03_MemOffRevokesEveryDomainAndKeepsTheArea) {
  const int bufFd = exportBar2();
  ASSERT_EQ(mapFile(bufFd, kIova), 0);
  ASSERT_EQ(ioptes(), 4U);

  setMemory(false);
  EXPECT_EQ(state(bufFd), State::kRevoked);
  EXPECT_EQ(ioptes(), 0U) << "every IOPTE of the area, in both domains";
  EXPECT_FALSE(peerDmaReaches(kIova));
  EXPECT_EQ(mapAnonAt(kIova + 4 * kKiB, 4 * kKiB), -17) << "the IOVA stays allocated";
  EXPECT_EQ(mapFile(bufFd, 0x2'0000'0000), -19) << "revoked";

  setMemory(true);
  EXPECT_EQ(state(bufFd), State::kUsable);
  EXPECT_EQ(ioptes(), 0U) << "no automatic remap";
  EXPECT_FALSE(peerDmaReaches(kIova));
  uint64_t removed = 0;
  ASSERT_EQ(ioasUnmap(kIova, 2 * kGiB, &removed), 0);
  EXPECT_EQ(removed, 2 * kGiB);
  ASSERT_EQ(mapFile(bufFd, kIova), 0) << "mapped anew";
  EXPECT_EQ(ioptes(), 4U);
  EXPECT_TRUE(peerDmaReaches(kIova));
}

// Invariant 7 cannot be reached through a dma-buf import: the revoke took
// the IOPTEs, so the peer's DMA is a DMAR fault where type1's stale IOPTE
// reaches the decode-disabled BAR (DMA_14 in type1_test.cc).
TEST_F(DmaBufTest, DMABUF_03_DmaThroughARevokedAreaFaultsAndNeverReachesTheBar) {
  InvariantMonitor monitor(*kernel);
  const int bufFd = exportBar2();
  ASSERT_EQ(mapFile(bufFd, kIova), 0);
  ASSERT_TRUE(kernel->iommu().dmaWrite(peer->pdev(), kIova, 4, 1));
  const uint64_t faultsBefore = kernel->iommu().dmarFaultCount();

  setMemory(false);
  EXPECT_EQ(kernel->iommu().dmaWrite(peer->pdev(), kIova + 0x40, 4, 2).error(), Errno::kEIO);
  EXPECT_EQ(kernel->iommu().dmaRead(peer->pdev(), kIova, 4).error(), Errno::kEIO);
  EXPECT_EQ(kernel->iommu().dmarFaultCount(), faultsBefore + 2);
  EXPECT_EQ(kernel->iommu().dmaDecodeViolationCount(), 0U);
  EXPECT_EQ(monitor.counts().dmaDecodeViolations, 0U);
}

// DMABUF-04: FLR via DEVCTL, VFIO_DEVICE_RESET, D3hot (then D0),
// LOW_POWER_ENTRY (then EXIT), hot reset.
class DmaBufTriggerTest : public DmaBufTest, public ::testing::WithParamInterface<int> {
 protected:
  void flr() {
    const uint64_t devctl = *dev->pdev().pcieCapOffset() + kPciExpDevctl;
    configWrite(devctl, configRead(devctl) | kPciExpDevctlBcrFlr);
  }
  void hotReset() {
    HotResetArg reset = hotResetArg({});
    ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, reset.get()), 0);
  }
  // Runs trigger `i`; returns whether the buffer is already usable again
  // (a reset) rather than held revoked until a second call.
  bool trigger(int i) {
    switch (i) {
      case 0: flr(); return true;
      case 1: EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_RESET, nullptr), 0); return true;
      case 2: setPowerState(3); return false;
      case 3: EXPECT_EQ(lowPower(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), 0); return false;
      default: hotReset(); return true;
    }
  }
  void restore(int i) {
    if (i == 2) {
      setPowerState(0);
    } else if (i == 3) {
      EXPECT_EQ(lowPower(VFIO_DEVICE_FEATURE_LOW_POWER_EXIT), 0);
    }
  }
};

TEST_P(DmaBufTriggerTest, DMABUF_04_EveryZapTriggerRevokes) {
  const int bufFd = exportBar2();
  ASSERT_EQ(mapFile(bufFd, kIova), 0);
  ASSERT_EQ(ioptes(), 4U);

  if (!trigger(GetParam())) {
    EXPECT_EQ(state(bufFd), State::kRevoked);
    EXPECT_EQ(ioptes(), 0U);
    EXPECT_EQ(mapFile(bufFd, 0x2'0000'0000), -19) << "revoked";
    restore(GetParam());
  }
  EXPECT_EQ(state(bufFd), State::kUsable) << "memory is enabled afterwards";
  EXPECT_EQ(ioptes(), 0U) << "revoked on the way, not mapped again";
  EXPECT_FALSE(peerDmaReaches(kIova));
  EXPECT_EQ(mapAnonAt(kIova, 4 * kKiB), -17) << "the IOVA stays allocated";
  uint64_t removed = 0;
  ASSERT_EQ(ioasUnmap(kIova, 2 * kGiB, &removed), 0);
  EXPECT_EQ(removed, 2 * kGiB);
  ASSERT_EQ(mapFile(bufFd, kIova), 0);
  EXPECT_EQ(ioptes(), 4U);
}

std::string triggerName(const ::testing::TestParamInfo<int>& info) {
  static const char* const kNames[] = {"FlrViaDevctl", "DeviceReset", "D3hot", "LowPowerEntry",
                                       "HotReset"};
  return kNames[info.param];
}

INSTANTIATE_TEST_SUITE_P(Triggers, DmaBufTriggerTest, ::testing::Range(0, 5), triggerName);

TEST_F(DmaBufTest, DMABUF_05_ExportedWhileMemOffStartsRevoked) {
  setMemory(false);
  const int bufFd = exportBar2();
  EXPECT_EQ(state(bufFd), State::kRevoked);
  EXPECT_EQ(mapFile(bufFd, kIova), -19);
  EXPECT_EQ(ioasUnmap(kIova, 2 * kGiB), -2) << "no area was left behind";
  setMemory(true);
  EXPECT_EQ(state(bufFd), State::kUsable);
  ASSERT_EQ(mapFile(bufFd, kIova), 0);
  EXPECT_EQ(ioptes(), 4U);
}

TEST_F(DmaBufTest, DMABUF_06_LastCloseRevokesForGood) {
  const int bufFd = exportBar2();
  ASSERT_EQ(mapFile(bufFd, kIova), 0);
  ASSERT_EQ(ioptes(), 4U);
  ASSERT_EQ(proc->close(fd), 0);
  EXPECT_EQ(dev->openCount(), 0);
  EXPECT_EQ(state(bufFd), State::kPermanentlyRevoked);
  EXPECT_EQ(domainOf(*peer).iopteCounts().total(), 0U) << "the import lost its IOPTEs";
  EXPECT_EQ(mapFile(bufFd, 0x2'0000'0000), -19);
  EXPECT_NE(proc->dmaBuf(bufFd), nullptr) << "the fd stays a valid file";
  EXPECT_EQ(proc->mmap(0, 4 * kKiB, prot::kRead, map::kShared, bufFd, 0), -22);

  // Opening the device again does not bring the buffer back.
  fd = bindAndAttach(*dev);
  EXPECT_EQ(state(bufFd), State::kPermanentlyRevoked);
  EXPECT_EQ(mapFile(bufFd, 0x2'0000'0000), -19);
  uint64_t removed = 0;
  EXPECT_EQ(ioasUnmap(kIova, 2 * kGiB, &removed), 0);
  EXPECT_EQ(removed, 2 * kGiB);
  EXPECT_EQ(proc->close(bufFd), 0);
}

// exit(): the device's last close revokes the imported buffer for good,
// the iommufd's IOAS goes with its areas, and every lock nesting of that
// teardown is in the documented order (TearDown).
TEST_F(DmaBufTest, ExitTearsDownExporterAndImporter) {
  const int bufFd = exportBar2();
  ASSERT_EQ(mapFile(bufFd, kIova), 0);
  std::weak_ptr<DmaBuf> weak = proc->dmaBuf(bufFd);
  proc->exit();
  EXPECT_TRUE(weak.expired()) << "no fd and no importer holds it";
  EXPECT_EQ(dev->openCount(), 0);
  EXPECT_EQ(kernel->iommu().domainFor(peer->pdev()), nullptr) << "the peer was detached";
}

// MEM toggles on one thread while another imports and unmaps the buffer:
// every import either fails with -ENODEV or lands (mapped, or revoked
// right after); no IOPTE outlives the final revoke, and lockdep reports
// nothing.
TEST_F(DmaBufTest, RevokeRacingMapFileLeavesNoIopteBehind) {
  const int bufFd = exportBar2();
  constexpr int kRounds = 200;
  std::thread toggler([&] {
    for (int i = 0; i < kRounds; ++i) {
      setMemory(false);
      setMemory(true);
    }
  });
  int mapped = 0;
  int refused = 0;
  int other = 0;
  for (int i = 0; i < kRounds; ++i) {
    const long r = mapFile(bufFd, kIova);
    if (r == 0) {
      ++mapped;
      if (ioasUnmap(kIova, 2 * kGiB) != 0) ++other;
    } else if (r == -19) {
      ++refused;
    } else {
      ++other;
    }
  }
  toggler.join();
  EXPECT_EQ(mapped + refused, kRounds);
  EXPECT_EQ(other, 0);
  ASSERT_EQ(mapFile(bufFd, kIova), 0);
  setMemory(false);
  EXPECT_EQ(ioptes(), 0U);
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

// iommufd's pages stay revoked: a domain added afterwards (the peer
// attached again) gets nothing for the area, before and after MEM=1.
TEST_F(DmaBufTest, ADomainAddedAfterARevokeGetsNothing) {
  const int bufFd = exportBar2();
  ASSERT_EQ(mapFile(bufFd, kIova), 0);
  setMemory(false);
  vfio_device_detach_iommufd_pt detach{.argsz = sizeof(detach)};
  ASSERT_EQ(proc->ioctl(peerFd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach), 0);
  vfio_device_attach_iommufd_pt at{.argsz = sizeof(at), .pt_id = ioas};
  ASSERT_EQ(proc->ioctl(peerFd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at), 0);
  EXPECT_EQ(domainOf(*peer).iopteCounts().total(), 0U);
  setMemory(true);
  EXPECT_EQ(domainOf(*peer).iopteCounts().total(), 0U);
  EXPECT_FALSE(peerDmaReaches(kIova));
}

// The buffer's file outlives neither its fd nor its importers: closing
// the fd of a mapped buffer keeps it (iommufd holds a reference), and the
// unmap then releases it off the device's list.
TEST_F(DmaBufTest, ClosingTheFdOfAnImportedBufferKeepsItUntilTheUnmap) {
  const int bufFd = exportBar2();
  ASSERT_EQ(mapFile(bufFd, kIova), 0);
  std::weak_ptr<DmaBuf> weak = proc->dmaBuf(bufFd);
  ASSERT_EQ(proc->close(bufFd), 0);
  EXPECT_FALSE(weak.expired());
  setMemory(false);
  EXPECT_EQ(ioptes(), 0U) << "still revoked through the import";
  setMemory(true);
  ASSERT_EQ(ioasUnmap(kIova, 2 * kGiB), 0);
  EXPECT_TRUE(weak.expired());
  setMemory(false);  // the device's list no longer names it
}

}  // namespace
}  // namespace vfiomm
