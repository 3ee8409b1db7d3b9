// /proc/<pid>/maps and smaps of a BAR mapping (vfio-uapi.md §9): the path
// and offset columns (UAPI-30), the VmFlags letters per era (UAPI-31), and
// do_mmap's treatment of a file not open for write (UAPI-32).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

#include "../vfio/vfio_fixture.h"
#include "base/byte_units.h"
#include "uapi/task_mmu.h"

namespace vfiomm::testing {
namespace {

constexpr uint64_t kVa = 0x7f0000000000;
constexpr uint64_t kBar0Len = 64 * kKiB;

class ProcMaps : public VfioTest {
 protected:
  void SetUp() override {}  // each test boots the era it needs

  // The value of smaps field `name` ("VmFlags", "THPeligible") of the
  // only VMA.
  std::string field(const std::string& name) {
    const std::string s = proc->smaps();
    const size_t at = s.find(name + ":");
    EXPECT_NE(at, std::string::npos) << s;
    const size_t from = s.find_first_not_of(' ', at + name.size() + 1);
    return s.substr(from, s.find('\n', at) - from);
  }
  std::string vmFlags() { return field("VmFlags"); }

  // A cdev fd of a second device on its own bus, bound to an iommufd.
  int boundCdev(Process& p, int mode) {
    PciBus& bus = kernel->addBus(0x42);
    auto d2 = kernel->addVfioDevice(bus, standardDeviceConfig(bus.number()));
    EXPECT_TRUE(d2);
    cdevDev = *d2;
    const long cdev = p.open(kernel->cdevPath(*cdevDev), mode);
    const long iommufd = p.open("/dev/iommu", O_RDWR);
    EXPECT_GE(cdev, 0);
    vfio_device_bind_iommufd bind{.argsz = sizeof(vfio_device_bind_iommufd)};
    bind.iommufd = static_cast<int32_t>(iommufd);
    EXPECT_EQ(p.ioctl(static_cast<int>(cdev), VFIO_DEVICE_BIND_IOMMUFD, &bind), 0);
    return static_cast<int>(cdev);
  }

  VfioDevice* cdevDev = nullptr;
};

// The maps line the kernel prints: the prefix, then the name at column 73.
std::string line(const std::string& prefix, const std::string& name) {
  return prefix + std::string(73 - prefix.size(), ' ') + name + "\n";
}

TEST_F(ProcMaps, UAPI_30_GroupPathAnonInodeAndOffsetPerEra) {
  // 6.1 (G1 rewrote vm_pgoff: BAR0's physical address) and 6.12 (the file
  // offset); the same anon inode path either way.
  bootProfile(DesignKind::kVmaList, *KernelProfile::byName("linux-6.1"));
  ASSERT_EQ(map(kBar0Offset, kBar0Len, kVa), static_cast<long>(kVa));
  EXPECT_EQ(proc->maps(),
            line("7f0000000000-7f0000010000 rw-s f0000000 00:0e 1 ", "anon_inode:[vfio-device]"));
  bootProfile(DesignKind::kHugeFault, *KernelProfile::byName("linux-6.12"));
  ASSERT_EQ(map(kBar0Offset + 0x4000, 16 * kKiB, kVa), static_cast<long>(kVa));
  EXPECT_EQ(proc->maps(),
            line("7f0000000000-7f0000004000 rw-s 00004000 00:0e 1 ", "anon_inode:[vfio-device]"));
}

TEST_F(ProcMaps, UAPI_30_CdevPathIsTheDeviceNode) {
  bootProfile(DesignKind::kHugeFault, *KernelProfile::byName("linux-6.12"));
  auto other = Process::spawn(*kernel, "vmm");
  const int cdev = boundCdev(*other, O_RDWR);
  ASSERT_EQ(other->mmap(kVa, kBar0Len, prot::kRead | prot::kWrite, map::kShared | map::kFixed, cdev,
                        kBar0Offset),
            static_cast<long>(kVa));
  const Inode& node = kernel->cdevInode(*cdevDev);
  EXPECT_EQ(kernel->cdevPath(*cdevDev), "/dev/vfio/devices/vfio1");
  EXPECT_EQ(other->maps(),
            line(fmt::format("7f0000000000-7f0000010000 rw-s 00000000 00:05 {} ", node.ino()),
                 "/dev/vfio/devices/vfio1"));
  // The first device's node is vfio0.
  EXPECT_EQ(kernel->cdevPath(*dev), "/dev/vfio/devices/vfio0");
}

TEST_F(ProcMaps, UAPI_30_AnonymousMappingHasNoName) {
  bootProfile(DesignKind::kHugeFault, *KernelProfile::byName("linux-6.12"));
  ASSERT_EQ(
      proc->mmap(kVa, 8192, prot::kRead, map::kPrivate | map::kAnonymous | map::kFixed, -1, 0),
      static_cast<long>(kVa));
  EXPECT_EQ(proc->maps(), "7f0000000000-7f0000002000 r--p 00000000 00:00 0 \n");
}

TEST_F(ProcMaps, UAPI_31_VmFlagsOn61ArComesWithAFillAndGoesWithAZap) {
  bootProfile(DesignKind::kVmaList, *KernelProfile::byName("linux-6.1"));
  ASSERT_EQ(map(kBar0Offset, kBar0Len, kVa), static_cast<long>(kVa));
  EXPECT_EQ(vmFlags(), "rd wr sh mr mw me ms pf io de dd sd ");
  ASSERT_EQ(touch(kVa).sig.signo, 0);
  EXPECT_EQ(vmFlags(), "rd wr sh mr mw me ms pf io de ar dd sd ");
  setMem(false);
  EXPECT_EQ(vmFlags(), "rd wr sh mr mw me ms pf io de dd sd ");
  setMem(true);
  ASSERT_EQ(touch(kVa).sig.signo, 0);
  EXPECT_EQ(vmFlags(), "rd wr sh mr mw me ms pf io de ar dd sd ");
}

// VM_PAT across fork (mm-pfnmap.md §7.1, §11): the child's copy of a
// filled G1 mapping is reserved again and shows `ar`, whether or not the
// fork first clears the parent's VM_PAT from it (fork_clears_vm_pat); when
// ->open runs after the copy (6.1.0-6.1.89), its zap frees the child's
// reservation and `ar` goes with it. The parent keeps its own. Only an
// ->open before the copy without the clear makes untrack_pfn() find no PTE
// at vm_start: its WARN_ON_ONCE (counted, not printed).
TEST_F(ProcMaps, UAPI_31_VmPatAcrossForkPerEra) {
  struct Era {
    bool openBeforeCopy;
    bool clearsVmPat;
    bool childHasAr;
    uint64_t untrackWarns;
  };
  const std::string withAr = "rd wr sh mr mw me ms pf io de ar dd sd ";
  const std::string withoutAr = "rd wr sh mr mw me ms pf io de dd sd ";
  for (const Era& era : {Era{true, true, true, 0}, Era{true, false, true, 1},
                         Era{false, true, false, 0}, Era{false, false, false, 0}}) {
    SCOPED_TRACE(
        fmt::format("open before copy {}, clears VM_PAT {}", era.openBeforeCopy, era.clearsVmPat));
    KernelProfile p = *KernelProfile::byName("linux-6.1");
    p.mm.forkOpenBeforeCopy = era.openBeforeCopy;
    p.mm.forkClearsVmPat = era.clearsVmPat;
    bootProfile(DesignKind::kVmaList, p);
    ASSERT_EQ(map(kBar0Offset, kBar0Len, kVa), static_cast<long>(kVa));
    ASSERT_EQ(touch(kVa).sig.signo, 0);
    const uint64_t warns = CounterSet::current().snapshot().get("mm.untrack_pfn.no_pte");
    std::shared_ptr<Process> child = proc->fork();
    ASSERT_NE(child, nullptr);
    EXPECT_EQ(CounterSet::current().snapshot().get("mm.untrack_pfn.no_pte") - warns,
              era.untrackWarns);
    EXPECT_EQ(vmFlags(), withAr);
    const std::string s = child->smaps();
    const size_t at = s.find("VmFlags: ");
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(s.substr(at + 9, s.find('\n', at) - at - 9), era.childHasAr ? withAr : withoutAr);
  }
}

// THPeligible (task_mmu.c, __thp_vma_allowable_orders with TVA_SMAPS |
// TVA_ENFORCE_SYSFS, 6.12): a pfnmap VMA is eligible only when its ops
// have ->huge_fault (G3), THP's sysfs setting allows it (always, or
// madvise with MADV_HUGEPAGE), and it can hold an aligned 2 MiB or 1 GiB
// entry whose VA and file offset agree.
TEST_F(ProcMaps, UAPI_31_ThpEligibleOnlyForHugeFaultVmasThatCanHoldALeaf) {
  const auto eligible = [&](DesignKind design, ThpEnabled thp, uint64_t len, uint64_t va,
                            int advice) {
    KernelConfig cfg;
    cfg.design = design;
    cfg.thp = thp;
    bootConfig(cfg);
    EXPECT_EQ(map(kBar2Offset, len, va), static_cast<long>(va));
    if (advice >= 0) {
      EXPECT_EQ(proc->madvise(va, len, advice), 0);
    }
    return field("THPeligible");
  };
  constexpr uint64_t k2M = 2 * kMiB;
  EXPECT_EQ(eligible(DesignKind::kHugeFault, ThpEnabled::kAlways, k2M, kVa, -1), "1");
  EXPECT_EQ(eligible(DesignKind::kPrefault, ThpEnabled::kAlways, k2M, kVa, -1), "1");
  EXPECT_EQ(eligible(DesignKind::kFillVma, ThpEnabled::kAlways, k2M, kVa, -1), "0");
  EXPECT_EQ(eligible(DesignKind::kAddressSpace, ThpEnabled::kAlways, k2M, kVa, -1), "0");
  EXPECT_EQ(eligible(DesignKind::kHugeFault, ThpEnabled::kNever, k2M, kVa, -1), "0");
  EXPECT_EQ(eligible(DesignKind::kHugeFault, ThpEnabled::kMadvise, k2M, kVa, -1), "0");
  EXPECT_EQ(eligible(DesignKind::kHugeFault, ThpEnabled::kMadvise, k2M, kVa, madv::kHugepage), "1");
  EXPECT_EQ(eligible(DesignKind::kHugeFault, ThpEnabled::kAlways, k2M, kVa, madv::kNoHugepage),
            "0");
  // Smaller than a PMD, or a VA 4 KiB off the offset's 2 MiB alignment.
  EXPECT_EQ(eligible(DesignKind::kHugeFault, ThpEnabled::kAlways, k2M - kPageSize, kVa, -1), "0");
  EXPECT_EQ(eligible(DesignKind::kHugeFault, ThpEnabled::kAlways, 3 * k2M, kVa + kPageSize, -1),
            "0");
  // Three PMDs' worth at a misaligned start still hold one aligned leaf
  // when the VA matches the offset: the test looks at the last one.
  EXPECT_EQ(eligible(DesignKind::kHugeFault, ThpEnabled::kAlways, 3 * k2M - kPageSize, kVa, -1),
            "1");
}

TEST_F(ProcMaps, UAPI_31_VmFlagsOn612NeverChangeWithTouches) {
  bootProfile(DesignKind::kHugeFault, *KernelProfile::byName("linux-6.12"));
  ASSERT_EQ(map(kBar0Offset, kBar0Len, kVa), static_cast<long>(kVa));
  const std::string want = "rd wr sh mr mw me ms pf io de dd sd ?? ";
  EXPECT_EQ(vmFlags(), want);
  ASSERT_EQ(touch(kVa).sig.signo, 0);
  EXPECT_EQ(vmFlags(), want);
  setMem(false);
  EXPECT_EQ(vmFlags(), want);
  ASSERT_EQ(proc->munmap(kVa, kBar0Len), 0);
  ASSERT_EQ(map(kBar0Offset, kBar0Len, kVa, prot::kRead), static_cast<long>(kVa));
  EXPECT_EQ(vmFlags(), "rd sh mr mw me ms pf io de dd sd ?? ");
}

TEST_F(ProcMaps, UAPI_31_AnonInodeNoexecDropsMeAndRefusesProtExec) {
  KernelProfile p = *KernelProfile::byName("linux-6.12");
  bootProfile(DesignKind::kHugeFault, p);
  ASSERT_EQ(map(kBar0Offset, kBar0Len, kVa, prot::kRead | prot::kExec), static_cast<long>(kVa));
  EXPECT_EQ(vmFlags(), "rd ex sh mr mw me ms pf io de dd sd ?? ");

  p.vfio.anonInodeNoexec = true;
  bootProfile(DesignKind::kHugeFault, p);
  EXPECT_EQ(map(kBar0Offset, kBar0Len, kVa, prot::kRead | prot::kExec), -1);  // -EPERM
  ASSERT_EQ(map(kBar0Offset, kBar0Len, kVa), static_cast<long>(kVa));
  EXPECT_EQ(vmFlags(), "rd wr sh mr mw ms pf io de dd sd ?? ");
  // The device node is on /dev, not on the anon-inode superblock.
  auto other = Process::spawn(*kernel, "vmm");
  const int cdev = boundCdev(*other, O_RDWR);
  ASSERT_GT(other->mmap(0, kBar0Len, prot::kRead | prot::kExec, map::kShared, cdev, kBar0Offset),
            0);
  EXPECT_NE(other->smaps().find("VmFlags: rd ex sh mr mw me ms "), std::string::npos);
}

TEST_F(ProcMaps, UAPI_32_ReadOnlyCdevCannotMapShared) {
  bootProfile(DesignKind::kHugeFault, *KernelProfile::byName("linux-6.12"));
  auto other = Process::spawn(*kernel, "vmm");
  const int cdev = boundCdev(*other, O_RDONLY);
  EXPECT_EQ(other->mmap(0, kBar0Len, prot::kRead, map::kShared, cdev, kBar0Offset), -22);
  EXPECT_EQ(other->mmap(0, kBar0Len, prot::kRead | prot::kWrite, map::kShared, cdev, kBar0Offset),
            -13);
  EXPECT_EQ(other->maps(), "");
}

// vfs_read()/vfs_write() refuse a file not open for it (-EBADF) before
// vfio's access_granted check (-EINVAL) of an unbound cdev.
TEST_F(ProcMaps, UAPI_32_UnboundCdevOpenedForTheOtherDirectionIsEbadf) {
  bootProfile(DesignKind::kHugeFault, *KernelProfile::byName("linux-6.12"));
  auto other = Process::spawn(*kernel, "vmm");
  PciBus& bus = kernel->addBus(0x42);
  VfioDevice& unbound = **kernel->addVfioDevice(bus, standardDeviceConfig(bus.number()));
  uint32_t v = 0;
  const int wronly = static_cast<int>(other->open(kernel->cdevPath(unbound), O_WRONLY));
  ASSERT_GE(wronly, 0);
  EXPECT_EQ(other->pread(wronly, &v, 4, kBar0Offset), -9);
  EXPECT_EQ(other->pwrite(wronly, &v, 4, kBar0Offset), -22) << "unbound";
  ASSERT_EQ(other->close(wronly), 0);
  const int rdonly = static_cast<int>(other->open(kernel->cdevPath(unbound), O_RDONLY));
  ASSERT_GE(rdonly, 0);
  EXPECT_EQ(other->pwrite(rdonly, &v, 4, kBar0Offset), -9);
  EXPECT_EQ(other->pread(rdonly, &v, 4, kBar0Offset), -22) << "unbound";
}

TEST(VmFlagsMnemonics, BitsWithoutAMnemonicPrintQuestionMarks) {
  EXPECT_EQ(vmFlagsMnemonics(vm::kRead | vm::kSoftDirty | vm::kAllowAnyUncached | (1ULL << 40)),
            "rd sd ?? ?? ");
  EXPECT_EQ(vmFlagsMnemonics(0), "");
}

// show_smap_vma_flags(): the madvise flags, in bit order.
TEST(VmFlagsMnemonics, MadviseFlags) {
  EXPECT_EQ(vmFlagsMnemonics(vm::kSeqRead | vm::kRandRead | vm::kDontCopy | vm::kMergeable |
                             vm::kHugepage | vm::kNoHugepage),
            "sr rr dc hg nh mg ");
}

}  // namespace
}  // namespace vfiomm::testing
