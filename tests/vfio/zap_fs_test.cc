// What a zap reaches and what keeps a device open (ZAP, FS, SPLIT-05/07):
// vfio-bar-mapping.md §7 and §13. One inode per device gives every file of
// the device one address space, so one unmap_mapping_range call finds every
// mapping (G2+); the mappings hold the device file, so close_device waits
// for the last of them.
//
// ZAP-05 and FS-03 (G1's vma_list walk and its pfn-keyed i_mmap) are in
// vma_list_test.cc with the rest of G1.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/byte_units.h"
#include "fs/vfio_fs.h"
#include "mm/address_space.h"
#include "mm/pfn_insert.h"
#include "mm/vma.h"
#include "pci/pci_bus.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_group.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

long neg(Errno e) { return -static_cast<long>(toInt(e)); }

// One mapping of a device in some process.
struct Mapping {
  Process* p;
  uint64_t va;
  uint64_t len;
};

class ZapFsTest : public VfioTest {
 protected:
  uint64_t mapTouched(Process& p, int dfd, uint64_t offset, uint64_t len) {
    const long va = p.mmap(0, len, prot::kRead | prot::kWrite, map::kShared, dfd, offset);
    EXPECT_GT(va, 0);
    const auto at = static_cast<uint64_t>(va);
    for (uint64_t o = 0; o < len; o += kPageSize) EXPECT_EQ(touch(at + o, &p).sig.signo, 0);
    return at;
  }
  AddressSpace& mapping() { return dev->pci().mapping(); }
  // A second group-path fd for D in `proc` (VFIO_GROUP_GET_DEVICE_FD again).
  int secondGroupFd() {
    const long d =
        proc->ioctl(groupFd, VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(dev->name().c_str()));
    EXPECT_GE(d, 0);
    return static_cast<int>(d);
  }
  // The starts of the VMAs i_mmap holds over the page range [first, last].
  std::vector<uint64_t> iMmapStarts(uint64_t first, uint64_t last) {
    std::vector<uint64_t> starts;
    ReadGuard g(mapping().iMmapRwsem());
    mapping().forEachVma(first, last, [&](Vma& v) { starts.push_back(v.start().value()); });
    return starts;
  }
};

// Linux lets the cdev path bind a device only when the group path has it
// neither open nor its group file open (vfio_df_open(): "Only the group
// path allows the device to be opened multiple times"; and
// vfio_device_block_group()), so no kernel has D open through both at once,
// as ZAP-02 and FS-01 put it. The tests below take both paths one after
// the other, over the same device inode.

TEST_P(ZapFsTest, ZAP_01_DeviceSpecificRegionsAreNotZapped) {
  // Region 9: a variant driver's mmappable region, mapped by its own op
  // (remap_pfn_range at mmap time, to memory outside every BAR).
  constexpr uint64_t kRegion9Pfn = 0xE0000;
  DeviceRegion region;
  region.size = 64 * kKiB;
  region.flags = vfio::kRegionRead | vfio::kRegionWrite | vfio::kRegionMmap;
  region.mmap = [](Vma& vma) {
    return remapPfnRange(vma, vma.start(), Pfn(kRegion9Pfn), vma.length(), vma.pageProt());
  };
  dev->pci().addDeviceRegion(region);
  const long mapped9 = map(VFIO_PCI_INDEX_TO_OFFSET(9), 64 * kKiB);
  ASSERT_GT(mapped9, 0);
  const auto r9 = static_cast<uint64_t>(mapped9);
  ASSERT_EQ(leaves(r9, 64 * kKiB).pte, 16U);
  const uint64_t bar0 = mapTouched(*proc, fd, kBar0Offset, 64 * kKiB);
  ASSERT_GT(leaves(bar0, 64 * kKiB).total(), 0U);
  for (const VmaSnapshot& v : proc->mm().vmaSnapshot())
    if (v.start.value() == r9) {
      EXPECT_EQ(v.pgoff, PgOff(9ULL << 28));
    }

  std::vector<uint64_t> visited;
  mapping().setZapObserver([&](const Vma& v) { visited.push_back(v.start().value()); });
  const uint64_t calls = mapping().unmapCalls();
  setMem(false);
  mapping().setZapObserver({});

  EXPECT_EQ(leaves(bar0, 64 * kKiB).total(), 0U);
  EXPECT_EQ(leaves(r9, 64 * kKiB).pte, 16U);
  EXPECT_EQ(translate(r9 + 0x3000).pfn, Pfn(kRegion9Pfn + 3));
  if (isG1()) {
    // The list walk: no unmap_mapping_range at all.
    EXPECT_EQ(mapping().unmapCalls(), calls);
    EXPECT_TRUE(visited.empty());
  } else {
    // The query over [0, 6 << 28) of the inode's i_mmap finds BAR0's VMA only.
    EXPECT_EQ(mapping().unmapCalls() - calls, 1U);
    EXPECT_EQ(visited, std::vector<uint64_t>{bar0});
    EXPECT_EQ(iMmapStarts(0, (6ULL << 28) - 1), std::vector<uint64_t>{bar0});
    EXPECT_EQ(iMmapStarts(9ULL << 28, 9ULL << 28), std::vector<uint64_t>{r9});
  }
}

TEST_P(ZapFsTest, ZAP_04_NoTlbOrPageTableTranslatesAZappedVma) {
  for (unsigned cpu = 1; cpu < kernel->machine().cpuCount(); ++cpu) proc->addThread(cpu);
  auto child = proc->fork();
  ASSERT_NE(child, nullptr);
  const std::vector<Mapping> maps = {
      {proc.get(), mapTouched(*proc, fd, kBar0Offset, 64 * kKiB), 64 * kKiB},
      {proc.get(), mapTouched(*proc, fd, kBar2Offset, 2 * kMiB), 2 * kMiB},
      {child.get(), mapTouched(*child, fd, kBar0Offset + 0x4000, 16 * kKiB), 16 * kKiB},
  };
  // Every thread of every process reads every page: every CPU caches them.
  auto touchEverywhere = [&] {
    for (const Mapping& m : maps)
      for (size_t t = 0; t < m.p->threadCount(); ++t)
        for (uint64_t o = 0; o < m.len; o += kPageSize)
          ASSERT_EQ(m.p->thread(t).load(m.va + o).sig.signo, 0);
  };
  auto cachedAnywhere = [&](const Mapping& m, uint64_t va) {
    for (unsigned c = 0; c < kernel->machine().cpuCount(); ++c)
      if (kernel->machine().cpu(c).tlbTranslates(m.p->mm().id(), VirtAddr(va))) return true;
    return false;
  };

  const uint32_t pmcsr = *dev->pdev().pmCapOffset() + kPciPmCtrl;
  const uint32_t devctl = *dev->pdev().pcieCapOffset() + kPciExpDevctl;
  // Through pointers: clang does not capture a struct with a flexible
  // array member.
  vfio_device_feature entryArg{.argsz = sizeof(vfio_device_feature)};
  entryArg.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY;
  vfio_device_feature exitArg{.argsz = sizeof(vfio_device_feature)};
  exitArg.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT;
  vfio_device_feature* const entry = &entryArg;
  vfio_device_feature* const exit = &exitArg;
  struct Trigger {
    std::string name;
    std::function<void()> zap;
    std::function<void()> restore;  // empty: the device is usable right after
  };
  const std::vector<Trigger> triggers = {
      {"COMMAND.MEM=0", [&] { setMem(false); }, [&] { setMem(true); }},
      {"PMCSR D3hot", [&] { ASSERT_EQ(configWrite(pmcsr, 3, 2), 2); },
       [&] { ASSERT_EQ(configWrite(pmcsr, 0, 2), 2); }},
      {"LOW_POWER_ENTRY", [&] { ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_FEATURE, entry), 0); },
       [&] { ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_FEATURE, exit), 0); }},
      {"VFIO_DEVICE_RESET", [&] { ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_RESET, nullptr), 0); }, {}},
      {"DEVCTL BCR_FLR",
       [&] {
         const uint32_t ctl = configRead(devctl, 2);
         ASSERT_EQ(configWrite(devctl, ctl | kPciExpDevctlBcrFlr, 2), 2);
       },
       {}},
      {"VFIO_DEVICE_PCI_HOT_RESET",
       [&] {
         HotResetArg args = hotResetArg({groupFd});
         ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, args.get()), 0);
       },
       {}},
  };
  for (const Trigger& t : triggers) {
    SCOPED_TRACE(t.name);
    touchEverywhere();
    ASSERT_TRUE(cachedAnywhere(maps[0], maps[0].va));
    t.zap();
    // `prefault` refills the page tables at once when the device is usable
    // after the zap; nothing ever refills a TLB but an access.
    const bool refilled = designTraits(design()).refillsOnEnable && !t.restore;
    for (const Mapping& m : maps) {
      for (uint64_t o = 0; o < m.len; o += kPageSize) {
        EXPECT_FALSE(cachedAnywhere(m, m.va + o)) << std::hex << m.va + o;
        EXPECT_EQ(translate(m.va + o, m.p).present, refilled) << std::hex << m.va + o;
      }
    }
    if (t.restore) t.restore();
  }
}

TEST_P(ZapFsTest, SPLIT_05_CloseDeviceWaitsForTheLastMapping) {
  const uint64_t a = mapTouched(*proc, fd, kBar0Offset, 64 * kKiB);
  const long b = map(kBar0Offset, 16 * kKiB);
  ASSERT_GT(b, 0);
  const uint64_t closes = dev->closeDeviceCalls();
  ASSERT_EQ(dev->openCount(), 1);
  EXPECT_EQ(proc->close(fd), 0);
  EXPECT_EQ(dev->closeDeviceCalls(), closes);
  EXPECT_EQ(dev->openCount(), 1);
  EXPECT_EQ(touch(a + 0x1000).sig.signo, 0);
  EXPECT_EQ(touch(static_cast<uint64_t>(b)).sig.signo, 0);  // a new fault, served
  EXPECT_EQ(proc->munmap(a, 64 * kKiB), 0);
  EXPECT_EQ(dev->closeDeviceCalls(), closes);
  EXPECT_EQ(proc->munmap(static_cast<uint64_t>(b), 16 * kKiB), 0);
  EXPECT_EQ(dev->closeDeviceCalls() - closes, 1U);
  EXPECT_EQ(dev->openCount(), 0);
}

TEST_P(ZapFsTest, SPLIT_07_MappingOutlivesEveryFd) {
  proc.reset();  // the fixture's process exits: its open of D goes
  const uint64_t closes = dev->closeDeviceCalls();
  ASSERT_EQ(dev->openCount(), 0);

  auto p = Process::spawn(*kernel, "user");
  const long container = p->open("/dev/vfio/vfio", O_RDWR);
  ASSERT_GE(container, 0);
  const long group = p->open(kernel->groupPath(*dev), O_RDWR);
  ASSERT_GE(group, 0);
  int c = static_cast<int>(container);
  ASSERT_EQ(p->ioctl(static_cast<int>(group), VFIO_GROUP_SET_CONTAINER, &c), 0);
  ASSERT_EQ(p->ioctl(static_cast<int>(container), VFIO_SET_IOMMU, ioctlArg(VFIO_TYPE1v2_IOMMU)), 0);
  const long device = p->ioctl(static_cast<int>(group), VFIO_GROUP_GET_DEVICE_FD,
                               const_cast<char*>(dev->name().c_str()));
  ASSERT_GE(device, 0);
  const int dfd = static_cast<int>(device);

  // Three 16 KiB mappings: one touched now, one by this process after the
  // fds are gone, one by a child forked after that.
  const uint64_t touched = mapTouched(*p, dfd, kBar0Offset, 16 * kKiB);
  const long later =
      p->mmap(0, 16 * kKiB, prot::kRead | prot::kWrite, map::kShared, dfd, kBar0Offset + 0x4000);
  const long forChild =
      p->mmap(0, 16 * kKiB, prot::kRead | prot::kWrite, map::kShared, dfd, kBar0Offset + 0x8000);
  ASSERT_GT(later, 0);
  ASSERT_GT(forChild, 0);
  ASSERT_EQ(p->thread().store(touched + 0x100, 0x5eed, 4).sig.signo, 0);

  EXPECT_EQ(p->close(dfd), 0);
  EXPECT_EQ(p->close(static_cast<int>(group)), 0);
  EXPECT_EQ(p->close(static_cast<int>(container)), 0);
  EXPECT_EQ(dev->closeDeviceCalls(), closes);
  EXPECT_EQ(dev->openCount(), 1);

  AccessResult r = p->thread().load(touched + 0x100);
  EXPECT_EQ(r.sig.signo, 0);
  EXPECT_EQ(r.value, 0x5eedU);
  uint64_t flt = minFlt(p.get());
  EXPECT_EQ(touch(static_cast<uint64_t>(later), p.get()).sig.signo, 0);
  EXPECT_EQ(minFlt(p.get()) - flt, 1U);
  EXPECT_EQ(translate(static_cast<uint64_t>(later), p.get()).pfn, Pfn(0xF0004));

  auto child = p->fork();
  ASSERT_NE(child, nullptr);
  r = child->thread().load(touched + 0x100);
  EXPECT_EQ(r.sig.signo, 0);
  EXPECT_EQ(r.value, 0x5eedU);
  flt = minFlt(child.get());
  EXPECT_EQ(touch(static_cast<uint64_t>(forChild) + 0x1000, child.get()).sig.signo, 0);
  EXPECT_EQ(minFlt(child.get()) - flt, 1U);
  EXPECT_EQ(translate(static_cast<uint64_t>(forChild) + 0x1000, child.get()).pfn, Pfn(0xF0009));
  child.reset();  // exits
  EXPECT_EQ(dev->closeDeviceCalls(), closes);

  EXPECT_EQ(p->munmap(touched, 16 * kKiB), 0);
  EXPECT_EQ(p->munmap(static_cast<uint64_t>(later), 16 * kKiB), 0);
  EXPECT_EQ(dev->closeDeviceCalls(), closes);
  EXPECT_EQ(p->munmap(static_cast<uint64_t>(forChild), 16 * kKiB), 0);
  EXPECT_EQ(dev->closeDeviceCalls() - closes, 1U);
  EXPECT_EQ(dev->openCount(), 0);
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, ZapFsTest, ::testing::ValuesIn(allDesigns()), designParamName);

// ---------------------------------------------------------------------------
// G2+: the vfio inode's address space.

using AddressSpaceZapTest = ZapFsTest;

TEST_P(AddressSpaceZapTest, ZAP_02_OneCallReachesEveryFdAndEveryProcess) {
  const int fd2 = secondGroupFd();
  auto child = proc->fork();  // shares both fds
  ASSERT_NE(child, nullptr);
  std::vector<Mapping> maps = {
      {proc.get(), mapTouched(*proc, fd, kBar0Offset, 64 * kKiB), 64 * kKiB},
      {proc.get(), mapTouched(*proc, fd2, kBar2Offset, 2 * kMiB), 2 * kMiB},
      {child.get(), mapTouched(*child, fd, kBar2Offset + 2 * kMiB, 2 * kMiB), 2 * kMiB},
      {child.get(), mapTouched(*child, fd2, kBar0Offset, 64 * kKiB), 64 * kKiB},
  };
  uint64_t calls = mapping().unmapCalls();
  setMem(false);
  EXPECT_EQ(mapping().unmapCalls() - calls, 1U);
  for (const Mapping& m : maps) EXPECT_EQ(leaves(m.va, m.len, m.p).total(), 0U) << std::hex << m.va;

  // The cdev path: refused while the group path has D open (see above);
  // once every group-path fd and mapping is gone, two processes sharing one
  // cdev fd are zapped by one call too.
  EXPECT_EQ(proc->open(kernel->cdevPath(*dev), O_RDWR), neg(Errno::kEBUSY));
  child.reset();
  for (const Mapping& m : maps)
    if (m.p == proc.get()) {
      ASSERT_EQ(proc->munmap(m.va, m.len), 0);
    }
  ASSERT_EQ(proc->close(fd), 0);
  ASSERT_EQ(proc->close(fd2), 0);
  ASSERT_EQ(dev->openCount(), 0);

  auto p = Process::spawn(*kernel, "cdev-user");
  const long cfd = p->open(kernel->cdevPath(*dev), O_RDWR);
  ASSERT_GE(cfd, 0);
  const long iommufd = p->open("/dev/iommu", O_RDWR);
  vfio_device_bind_iommufd bind{.argsz = sizeof(vfio_device_bind_iommufd)};
  bind.iommufd = static_cast<int32_t>(iommufd);
  ASSERT_EQ(p->ioctl(static_cast<int>(cfd), VFIO_DEVICE_BIND_IOMMUFD, &bind), 0);
  auto q = p->fork();
  ASSERT_NE(q, nullptr);
  maps = {
      {p.get(), mapTouched(*p, static_cast<int>(cfd), kBar0Offset, 64 * kKiB), 64 * kKiB},
      {q.get(), mapTouched(*q, static_cast<int>(cfd), kBar2Offset, 2 * kMiB), 2 * kMiB},
  };
  calls = mapping().unmapCalls();
  uint16_t cmd = 0;
  ASSERT_EQ(p->pread(static_cast<int>(cfd), &cmd, 2, kConfigOffset + kPciCommand), 2);
  cmd = static_cast<uint16_t>(cmd & ~kPciCommandMemory);
  ASSERT_EQ(p->pwrite(static_cast<int>(cfd), &cmd, 2, kConfigOffset + kPciCommand), 2);
  EXPECT_EQ(mapping().unmapCalls() - calls, 1U);
  for (const Mapping& m : maps) EXPECT_EQ(leaves(m.va, m.len, m.p).total(), 0U) << std::hex << m.va;
}

TEST_P(AddressSpaceZapTest, FS_01_EveryFileOfTheDeviceMapsTheInodesAddressSpace) {
  AddressSpace* const inodeMapping = &dev->inode().mapping();
  const int fd2 = secondGroupFd();
  VfioDeviceFile* f1 = proc->deviceFile(fd);
  VfioDeviceFile* f2 = proc->deviceFile(fd2);
  ASSERT_NE(f1, nullptr);
  ASSERT_NE(f2, nullptr);
  ASSERT_NE(f1, f2);
  EXPECT_EQ(f1->mapping(), inodeMapping);
  EXPECT_EQ(f2->mapping(), inodeMapping);
  // f_inode is the one anon inode of every group-path file, not the device's.
  const Inode* const groupInode = &f1->fInode();
  EXPECT_EQ(&f2->fInode(), groupInode);
  EXPECT_EQ(groupInode, &dev->group()->anonInode());
  EXPECT_NE(groupInode, &dev->inode());

  // One i_mmap tree, keyed by file offset in pages.
  const long a = proc->mmap(0, 16 * kKiB, prot::kRead, map::kShared, fd, kBar0Offset + 0x4000);
  const long b = proc->mmap(0, 2 * kMiB, prot::kRead, map::kShared, fd2, kBar2Offset + 2 * kMiB);
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  {
    ReadGuard g(inodeMapping->iMmapRwsem());
    EXPECT_EQ(inodeMapping->vmaCount(), 2U);
  }
  EXPECT_EQ(iMmapStarts(4, 7), std::vector<uint64_t>{static_cast<uint64_t>(a)});
  EXPECT_TRUE(iMmapStarts(0, 3).empty());
  EXPECT_TRUE(iMmapStarts(8, 8).empty());
  const uint64_t bar2Page = 2ULL << 28;
  EXPECT_EQ(iMmapStarts(bar2Page + 512, bar2Page + 1023),
            std::vector<uint64_t>{static_cast<uint64_t>(b)});
  EXPECT_TRUE(iMmapStarts(bar2Page, bar2Page + 511).empty());

  // The cdev file, once the group path has let go (see above): its own
  // f_inode, the same f_mapping, the same tree.
  ASSERT_EQ(proc->munmap(static_cast<uint64_t>(a), 16 * kKiB), 0);
  ASSERT_EQ(proc->munmap(static_cast<uint64_t>(b), 2 * kMiB), 0);
  ASSERT_EQ(proc->close(fd), 0);
  ASSERT_EQ(proc->close(fd2), 0);
  const long cfd = proc->open(kernel->cdevPath(*dev), O_RDWR);
  ASSERT_GE(cfd, 0);
  VfioDeviceFile* f3 = proc->deviceFile(static_cast<int>(cfd));
  ASSERT_NE(f3, nullptr);
  EXPECT_EQ(f3->mapping(), inodeMapping);
  EXPECT_NE(&f3->fInode(), groupInode);
  EXPECT_NE(&f3->fInode(), &dev->inode());
  const long iommufd = proc->open("/dev/iommu", O_RDWR);
  vfio_device_bind_iommufd bind{.argsz = sizeof(vfio_device_bind_iommufd)};
  bind.iommufd = static_cast<int32_t>(iommufd);
  ASSERT_EQ(proc->ioctl(static_cast<int>(cfd), VFIO_DEVICE_BIND_IOMMUFD, &bind), 0);
  const long c = proc->mmap(0, 16 * kKiB, prot::kRead, map::kShared, static_cast<int>(cfd),
                            kBar0Offset + 0x4000);
  ASSERT_GT(c, 0);
  EXPECT_EQ(iMmapStarts(4, 7), std::vector<uint64_t>{static_cast<uint64_t>(c)});
}

TEST_P(AddressSpaceZapTest, FS_02_InodeLivesWithTheDeviceAndPinsTheFs) {
  const KernelContext::Scope in(kernel->context());
  VfioFs& fs = kernel->vfioFs();
  const int pinsWithD = fs.pinCount();
  ASSERT_GE(pinsWithD, 1);
  ASSERT_TRUE(fs.mounted());

  PciBus& bus = kernel->addBus(0x20);
  auto pdev = kernel->pciHost().addDevice(bus, standardDeviceConfig(bus.number()));
  ASSERT_TRUE(pdev) << errnoName(pdev.error());
  auto created =
      VfioDevice::create(**pdev, kernel->machine(), fs, kernel->profile().vfio, design());
  ASSERT_TRUE(created) << errnoName(created.error());
  std::unique_ptr<VfioDevice> other = std::move(*created);
  EXPECT_EQ(fs.pinCount(), pinsWithD + 1);
  EXPECT_NE(other->inode().ino(), dev->inode().ino());
  EXPECT_NE(&other->inode().mapping(), &dev->inode().mapping());
  EXPECT_EQ(&other->pci().mapping(), &other->inode().mapping());
  other.reset();  // the release callback: iput + simple_release_fs
  EXPECT_EQ(fs.pinCount(), pinsWithD);

  // alloc_anon_inode failing fails the allocation, with the pin released.
  fs.failNextAlloc(Errno::kENOMEM);
  created = VfioDevice::create(**pdev, kernel->machine(), fs, kernel->profile().vfio, design());
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error(), Errno::kENOMEM);
  EXPECT_EQ(fs.pinCount(), pinsWithD);

  // The last device's release unmounts: a kernel's fs whose only device goes.
  VfioFs own;
  created = VfioDevice::create(**pdev, kernel->machine(), own, kernel->profile().vfio, design());
  ASSERT_TRUE(created) << errnoName(created.error());
  EXPECT_EQ(own.pinCount(), 1);
  EXPECT_TRUE(own.mounted());
  created->reset();
  EXPECT_EQ(own.pinCount(), 0);
  EXPECT_FALSE(own.mounted());
}

std::vector<DesignKind> g2PlusDesigns() {
  std::vector<DesignKind> out;
  for (DesignKind d : allDesigns())
    if (d != DesignKind::kVmaList) out.push_back(d);
  return out;
}

INSTANTIATE_TEST_SUITE_P(G2Plus, AddressSpaceZapTest, ::testing::ValuesIn(g2PlusDesigns()),
                         designParamName);

// ---------------------------------------------------------------------------
// G3: huge leaves.

using HugeZapTest = ZapFsTest;

TEST_P(HugeZapTest, ZAP_03_HugeLeavesAreClearedWholeOneFlushPerVma) {
  // Setup H: BAR2 whole, at a 1 GiB-aligned address.
  const uint64_t h = 64 * kGiB;
  ASSERT_EQ(map(kBar2Offset, 2 * kGiB, h), static_cast<long>(h));
  ASSERT_EQ(touch(h).sig.signo, 0);
  ASSERT_EQ(touch(h + kGiB).sig.signo, 0);
  ASSERT_EQ(leaves(h, 2 * kGiB).pud, 2U);
  ASSERT_EQ(leaves(h, 2 * kGiB).total(), 2U);
  const uint64_t bar0 = mapTouched(*proc, fd, kBar0Offset, 64 * kKiB);
  ASSERT_EQ(leaves(bar0, 64 * kKiB).pte, 16U);

  PageTable& pt = proc->mm().pageTable();
  const uint64_t pmdTables = pt.tablePages(PtLevel::kPmd);
  const uint64_t pteTables = pt.tablePages(PtLevel::kPte);
  ASSERT_GE(pteTables, 1U);
  const uint64_t flushes = kernel->machine().flushTotals().flushes.load();
  const CounterSnapshot before = CounterSet::current().snapshot();
  setMem(false);
  const CounterSnapshot delta = CounterSet::current().snapshot().since(before);

  EXPECT_EQ(leaves(h, 2 * kGiB).total(), 0U);
  EXPECT_EQ(leaves(bar0, 64 * kKiB).total(), 0U);
  EXPECT_EQ(delta.get("mm.zap.pud"), 2U);
  EXPECT_EQ(delta.get("mm.zap.pte"), 16U);
  EXPECT_EQ(delta.get("mm.thp_split_pud"), 0U);
  EXPECT_EQ(delta.get("mm.thp_split_pmd"), 0U);
  EXPECT_EQ(pt.tablePages(PtLevel::kPmd), pmdTables) << "a PUD leaf was split";
  EXPECT_EQ(pt.tablePages(PtLevel::kPte), pteTables) << "the empty PTE table is kept";
  EXPECT_EQ(kernel->machine().flushTotals().flushes.load() - flushes, 2U);
  EXPECT_EQ(touch(h).sig.signo, SigInfo::kSigbus);
}

INSTANTIATE_TEST_SUITE_P(G3, HugeZapTest,
                         ::testing::Values(DesignKind::kHugeFault, DesignKind::kPrefault),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
