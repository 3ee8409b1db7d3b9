// Region info, mmap checks and PFN arithmetic: the same in every design
// (REG, MMAP, PFN).
#include <gtest/gtest.h>

#include "base/byte_units.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

using RegionMmapTest = VfioTest;

TEST_P(RegionMmapTest, REG_01_Bar0HasMmapAndTheMsixMappableCapability) {
  vfio_region_info info{.argsz = sizeof(vfio_region_info)};
  info.index = 0;
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &info), 0);
  EXPECT_EQ(info.offset, 0U);
  EXPECT_EQ(info.size, 0x10000U);
  EXPECT_EQ(info.flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
                            VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS);
  // argsz 32 has no room for the chain: the kernel asks for 40.
  EXPECT_EQ(info.argsz, sizeof(vfio_region_info) + sizeof(vfio_info_cap_header));
  EXPECT_EQ(info.cap_offset, 0U);
}

TEST_P(RegionMmapTest, REG_02_SixtyFourBitBarAndItsEmptyUpperHalf) {
  vfio_region_info info{.argsz = sizeof(vfio_region_info)};
  info.index = 2;
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &info), 0);
  EXPECT_EQ(info.offset, 2ULL << 40);
  EXPECT_EQ(info.size, 2 * kGiB);
  EXPECT_EQ(info.flags,
            VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP);
  EXPECT_EQ(info.argsz, sizeof(vfio_region_info));
  for (uint32_t i : {3U, 5U}) {
    vfio_region_info empty{.argsz = sizeof(vfio_region_info)};
    empty.index = i;
    ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &empty), 0);
    EXPECT_EQ(empty.size, 0U);
    EXPECT_EQ(empty.flags, 0U);
  }
}

TEST_P(RegionMmapTest, REG_03_IoBarAndSubPageBar) {
  vfio_region_info io{.argsz = sizeof(vfio_region_info)};
  io.index = 4;
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &io), 0);
  EXPECT_EQ(io.size, 32U);
  EXPECT_EQ(io.flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
  vfio_region_info sub{.argsz = sizeof(vfio_region_info)};
  sub.index = 1;
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &sub), 0);
  EXPECT_NE(sub.flags & VFIO_REGION_INFO_FLAG_MMAP, 0U);
}

TEST_P(RegionMmapTest, REG_03_SubPageBarNotPageAlignedIsNotMappable) {
  // The same 256-byte BAR, not page aligned (0xF003_0100: 0xF001_0000 is D's).
  PciBus& bus = kernel->addBus(0x40);
  PciDeviceConfig cfg = standardDeviceConfig(bus.number());
  ResourcePlacement at = standardDevicePlacement();
  at.bars[0] = 0xF002'0000;
  at.bars[1] = 0xF003'0100;
  at.bars[2] = 0x41'0000'0000;
  auto d = kernel->addVfioDevice(bus, cfg, at);
  ASSERT_TRUE(d) << errnoName(d.error());
  dev = *d;
  const int dfd = openGroupPath(*proc);
  vfio_region_info sub{.argsz = sizeof(vfio_region_info)};
  sub.index = 1;
  ASSERT_EQ(proc->ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &sub), 0);
  EXPECT_EQ(sub.flags & VFIO_REGION_INFO_FLAG_MMAP, 0U);
}

TEST_P(RegionMmapTest, REG_04_VgaAndNoSuchRegionAreEinval) {
  for (uint32_t i : {8U, 9U}) {
    vfio_region_info info{.argsz = sizeof(vfio_region_info)};
    info.index = i;
    EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &info), -22);
  }
}

TEST_P(RegionMmapTest, MMAP_01_SharedMapSucceedsWithPfnmapFlagsAndNoEntries) {
  const long va = map(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va, 0);
  const auto vmas = proc->mm().vmaSnapshot();
  ASSERT_EQ(vmas.size(), 1U);
  const VmFlags want = vm::kIo | vm::kPfnmap | vm::kDontExpand | vm::kDontDump;
  EXPECT_EQ(vmas[0].flags & want, want);
  EXPECT_EQ(leaves(static_cast<uint64_t>(va), 64 * kKiB).total(), 0U);
}

TEST_P(RegionMmapTest, MMAP_02_PrivateIsEinvalAndCreatesNoVma) {
  EXPECT_EQ(map(kBar0Offset, 64 * kKiB, 0, prot::kRead | prot::kWrite, map::kPrivate), -22);
  EXPECT_EQ(proc->mm().mapCount(), 0U);
}

TEST_P(RegionMmapTest, MMAP_03_RangeChecksAgainstTheBar) {
  EXPECT_EQ(map(kBar2Offset, 2 * kGiB + 4 * kKiB), -22);
  EXPECT_EQ(map(kBar2Offset + 4 * kKiB, 2 * kGiB), -22);
  EXPECT_GT(map(kBar2Offset + 2 * kGiB - 4 * kKiB, 4 * kKiB), 0);
}

TEST_P(RegionMmapTest, MMAP_04_RegionsWithoutMmapAreEinval) {
  for (uint32_t index : {4U, 6U, 7U, 8U, 9U})
    EXPECT_EQ(map(uint64_t{index} << 40, 4 * kKiB), -22) << index;
}

TEST_P(RegionMmapTest, MMAP_05_SubPageBarMapsOnePage) {
  const long va = map(kBar1Offset, 4 * kKiB);
  ASSERT_GT(va, 0);
  ASSERT_EQ(touch(static_cast<uint64_t>(va)).sig.signo, 0);
  EXPECT_EQ(translate(static_cast<uint64_t>(va)).pfn, Pfn(0xF0010));
}

TEST_P(RegionMmapTest, MMAP_06_MemoryOffStillMapsButTheFirstAccessIsSigbus) {
  setMem(false);
  const long va = map(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va, 0);
  EXPECT_EQ(touch(static_cast<uint64_t>(va)).sig.signo, SigInfo::kSigbus);
}

TEST_P(RegionMmapTest, MMAP_07_CdevChecks) {
  const long c = proc->open(kernel->cdevPath(*dev), O_RDWR);
  EXPECT_EQ(c, -16);  // the group path holds it open
  auto other = Process::spawn(*kernel, "other");
  PciBus& bus = kernel->addBus(0x41);
  PciDeviceConfig cfg = standardDeviceConfig(bus.number());
  auto d2 = kernel->addVfioDevice(bus, cfg);
  ASSERT_TRUE(d2);
  const long unbound = other->open(kernel->cdevPath(**d2), O_RDWR);
  ASSERT_GE(unbound, 0);
  EXPECT_EQ(other->mmap(0, 4096, prot::kRead, map::kShared, static_cast<int>(unbound), 0), -22);
  ASSERT_EQ(other->close(static_cast<int>(unbound)), 0);
  const long ro = other->open(kernel->cdevPath(**d2), O_RDONLY);
  ASSERT_GE(ro, 0);
  const long iommufd = other->open("/dev/iommu", O_RDWR);
  vfio_device_bind_iommufd bind{.argsz = sizeof(vfio_device_bind_iommufd)};
  bind.iommufd = static_cast<int32_t>(iommufd);
  ASSERT_EQ(other->ioctl(static_cast<int>(ro), VFIO_DEVICE_BIND_IOMMUFD, &bind), 0);
  EXPECT_EQ(other->mmap(0, 4096, prot::kRead | prot::kWrite, map::kShared, static_cast<int>(ro), 0),
            -13);
  EXPECT_EQ(other->mmap(0, 4096, prot::kRead, map::kShared, static_cast<int>(ro), 0x100), -22);
  EXPECT_EQ(other->mmap(0, 0, prot::kRead, map::kShared, static_cast<int>(ro), 0), -22);
  // Not open for write: do_mmap() drops VM_SHARED, which vfio requires (UAPI-32).
  EXPECT_EQ(other->mmap(0, 4096, prot::kRead, map::kShared, static_cast<int>(ro), 0), -22);
}

// The fds of files without an mmap op: do_mmap() refuses them with -ENODEV
// only after its own checks, each of which answers first; x86-64's
// sys_mmap() checks the offset before it looks the fd up, and
// ksys_mmap_pgoff() the fd before MAP_HUGETLB.
TEST_P(RegionMmapTest, MMAP_07_AFileWithoutMmapIsEnodevAfterDoMmapsChecks) {
  const long container = proc->open("/dev/vfio/vfio", O_RDWR);
  const long roContainer = proc->open("/dev/vfio/vfio", O_RDONLY);
  const long iommufd = proc->open("/dev/iommu", O_RDWR);
  const long mem = proc->open("/proc/self/mem", O_RDWR);
  const long ev = proc->eventfd(0, 0);
  for (long f : {container, iommufd, mem, ev, static_cast<long>(groupFd)}) {
    SCOPED_TRACE(f);
    ASSERT_GE(f, 0);
    const int file = static_cast<int>(f);
    EXPECT_EQ(proc->mmap(0, 4096, prot::kRead, map::kShared, file, 0), -19);
    EXPECT_EQ(proc->mmap(0, 0, prot::kRead, map::kShared, file, 0), -22) << "len 0";
    EXPECT_EQ(proc->mmap(0, 4096, prot::kRead, map::kShared | map::kHugetlb, file, 0), -22);
    EXPECT_EQ(proc->mmap(0, 4096, prot::kRead, map::kSharedValidate | map::kSync, file, 0), -95);
    EXPECT_EQ(proc->mmap(0, 4096, prot::kRead, 0, file, 0), -22) << "no map type";
  }
  const int ro = static_cast<int>(roContainer);
  ASSERT_GE(ro, 0);
  EXPECT_EQ(proc->mmap(0, 4096, prot::kRead | prot::kWrite, map::kShared, ro, 0), -13);
  EXPECT_EQ(proc->mmap(0, 4096, prot::kRead | prot::kWrite, map::kPrivate, ro, 0), -19);
  const long va = map(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va, 0);
  EXPECT_EQ(proc->mmap(static_cast<uint64_t>(va), 4096, prot::kRead,
                       map::kShared | map::kFixedNoReplace, static_cast<int>(ev), 0),
            -17);
  EXPECT_EQ(proc->mm().mapCount(), 1U) << "-ENODEV comes before anything is unmapped";
  EXPECT_EQ(proc->mmap(static_cast<uint64_t>(va), 4096, prot::kRead, map::kShared | map::kFixed,
                       static_cast<int>(ev), 0),
            -19);
  EXPECT_EQ(proc->mm().mapCount(), 1U);
  EXPECT_EQ(
      proc->mmap(0, 4096, prot::kRead, map::kShared | map::kGrowsDown, static_cast<int>(ev), 0),
      -19);
  EXPECT_EQ(map(kBar0Offset, 4096, 0, prot::kRead, map::kShared | map::kGrowsDown), -22)
      << "a file with an mmap op refuses VM_GROWSDOWN";
  EXPECT_EQ(proc->mmap(0, 4096, prot::kRead, map::kShared, 999, 0x100), -22) << "offset first";
  EXPECT_EQ(proc->mmap(0, 4096, prot::kRead, map::kShared | map::kHugetlb, 999, 0), -9)
      << "the fd before MAP_HUGETLB";
}

TEST_P(RegionMmapTest, MMAP_08_ABarOwnedElsewhereIsEbusy) {
  dev->pci().claimBarElsewhere(2);
  EXPECT_EQ(map(kBar2Offset, 2 * kMiB), -16);
  EXPECT_GT(map(kBar0Offset, 64 * kKiB), 0);
}

TEST_P(RegionMmapTest, MMAP_09_VmPgoffIsAPfnOnlyInG1) {
  ASSERT_GT(map(kBar0Offset + 0x4000, 16 * kKiB), 0);
  const PgOff pgoff = proc->mm().vmaSnapshot()[0].pgoff;
  EXPECT_EQ(pgoff, isG1() ? PgOff(0xF0004) : PgOff(4));
}

TEST_P(RegionMmapTest, MMAP_11_MapFlags) {
  EXPECT_EQ(map(kBar0Offset, 4096, 0, prot::kRead, map::kShared | map::kHugetlb), -22);
  EXPECT_EQ(map(kBar0Offset, 4096, 0, prot::kRead, map::kSharedValidate | map::kSync), -95);
  for (int p : {prot::kNone, prot::kExec, prot::kWrite}) {
    const long va = map(kBar0Offset, 64 * kKiB, 0, p);
    ASSERT_GT(va, 0);
    EXPECT_EQ(leaves(static_cast<uint64_t>(va), 64 * kKiB).total(), 0U);
  }
  for (int f : {map::kLocked, map::kPopulate}) {
    const long va = map(kBar0Offset, 64 * kKiB, 0, prot::kRead, map::kShared | f);
    ASSERT_GT(va, 0);
    EXPECT_EQ(leaves(static_cast<uint64_t>(va), 64 * kKiB).total(), 0U);
  }
}

// Also the switch vfio_sets_allow_any_uncached in both positions (`??`).
TEST_P(RegionMmapTest, MMAP_12_SmapsOffsetFlagsAndPageSizes) {
  for (const char* profile : {"linux-6.1", ""}) {
    boot(design(), profile);
    const uint64_t h = 0x7f0000000000;
    ASSERT_GT(map(kBar0Offset + 0x4000, 16 * kKiB), 0);
    ASSERT_EQ(map(kBar2Offset, 2 * kGiB, h), static_cast<long>(h));
    ASSERT_EQ(touch(h).sig.signo, 0);
    const std::string smaps = proc->smaps();
    const bool anyUncached = std::string(profile) != "linux-6.1";
    EXPECT_NE(smaps.find(isG1() ? " f0004000 " : " 00004000 "), std::string::npos) << smaps;
    EXPECT_NE(smaps.find(anyUncached ? "pf io de dd sd ??" : "pf io de dd sd \n"),
              std::string::npos)
        << smaps;
    EXPECT_EQ(smaps.find("KernelPageSize:        2048 kB"), std::string::npos);
    EXPECT_NE(smaps.find("MMUPageSize:           4 kB"), std::string::npos);
  }
}

TEST_P(RegionMmapTest, PFN_01_OffsetsAndSplitsKeepThePfnRight) {
  const long va = map(kBar0Offset + 0x4000, 16 * kKiB);
  ASSERT_GT(va, 0);
  ASSERT_EQ(touch(static_cast<uint64_t>(va) + 0x1000).sig.signo, 0);
  EXPECT_EQ(translate(static_cast<uint64_t>(va) + 0x1000).pfn, Pfn(0xF0005));
  const long whole = map(kBar0Offset, 64 * kKiB);
  ASSERT_GT(whole, 0);
  ASSERT_EQ(proc->munmap(static_cast<uint64_t>(whole), 16 * kKiB), 0);
  ASSERT_EQ(touch(static_cast<uint64_t>(whole) + 16 * kKiB).sig.signo, 0);
  EXPECT_EQ(translate(static_cast<uint64_t>(whole) + 16 * kKiB).pfn, Pfn(0xF0004));
}

TEST_P(RegionMmapTest, PFN_02_StoreIsSeenByPreadAndASecondMapping) {
  const long a = map(kBar0Offset, 64 * kKiB);
  const long b = map(kBar0Offset, 64 * kKiB);
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  ASSERT_EQ(proc->thread().store(static_cast<uint64_t>(a) + 0x100, 0xdeadbeef, 4).sig.signo, 0);
  uint32_t v = 0;
  ASSERT_EQ(proc->pread(fd, &v, 4, kBar0Offset + 0x100), 4);
  EXPECT_EQ(v, 0xdeadbeefU);
  const AccessResult r = proc->thread().load(static_cast<uint64_t>(b) + 0x100, 4);
  EXPECT_EQ(r.sig.signo, 0);
  EXPECT_EQ(r.value, 0xdeadbeefU);
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, RegionMmapTest, ::testing::ValuesIn(allDesigns()),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
