// The user API under hostile use (issue 17): syscalls from several host
// threads at once (finding 7), calls on an exited process (finding 8), null
// buffers and a CPU the kernel lacks (finding 11, the non-ioctl part). The
// concurrent tests assert only on the end state, which no interleaving can
// change; the races themselves are what TSan (CI) checks.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <set>
#include <thread>
#include <vector>

#include "../vfio/vfio_fixture.h"
#include "base/byte_units.h"
#include "bound_context.h"

namespace vfiomm::testing {
namespace {

constexpr int kRounds = 60;
constexpr uint64_t kBar0Len = 64 * kKiB;

size_t iMmapCount(VfioDevice& d) {
  ReadGuard g(d.inode().mapping().iMmapRwsem());
  return d.inode().mapping().vmaCount();
}

class ApiHostile : public VfioTest {};

// One round of everything a VMM does with a device, on `t`'s process,
// through the group file both threads share (a group opens only once: a
// second open is -EBUSY, and a second container for it -EINVAL); returns
// the number of calls that did not give the expected answer.
int deviceRound(Kernel& kernel, VfioDevice& d, Process& p, Thread& t, int group) {
  int bad = 0;
  bad += p.open(kernel.groupPath(d), O_RDWR) != -16;
  const long container = p.open("/dev/vfio/vfio", O_RDWR);
  bad += container < 0;
  int c = static_cast<int>(container);
  bad += p.ioctl(group, VFIO_GROUP_SET_CONTAINER, &c) != -22;
  const long fd = p.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(d.name().c_str()));
  bad += fd < 0;
  // The group path holds the device open: its cdev is busy.
  bad += p.open(kernel.cdevPath(d), O_RDWR) != -16;
  const long va = p.mmap(0, kBar0Len, prot::kRead | prot::kWrite, map::kShared,
                         static_cast<int>(fd), kBar0Offset);
  bad += va <= 0;
  if (va > 0) {
    bad += t.store(static_cast<uint64_t>(va) + 0x40, 7, 4).sig.signo != 0;
    bad += p.munmap(static_cast<uint64_t>(va), kBar0Len) != 0;
  }
  uint32_t cmd = 0;
  bad += p.pread(static_cast<int>(fd), &cmd, 2, kConfigOffset + kPciCommand) != 2;
  std::shared_ptr<Process> child = p.fork();
  bad += child == nullptr;
  if (child != nullptr) child->exit();
  bad += p.close(static_cast<int>(fd)) != 0;
  bad += p.close(static_cast<int>(container)) != 0;
  return bad;
}

TEST_P(ApiHostile, Finding7_TwoHostThreadsHammerOneProcess) {
  const long firstFree = proc->open("/dev/vfio/vfio", O_RDWR);
  ASSERT_GE(firstFree, 0);
  ASSERT_EQ(proc->close(static_cast<int>(firstFree)), 0);
  Thread* second = proc->addThread(1);
  ASSERT_NE(second, nullptr);
  std::atomic<int> bad{0};
  std::barrier start(2);
  auto worker = [&](Thread& t) {
    start.arrive_and_wait();
    for (int i = 0; i < kRounds; ++i) bad += deviceRound(*kernel, *dev, *proc, t, groupFd);
  };
  testing::BoundThread a(kernel->context(), worker, std::ref(proc->thread(0)));
  testing::BoundThread b(kernel->context(), worker, std::ref(*second));
  a.join();
  b.join();
  EXPECT_EQ(bad.load(), 0);
  // Everything the rounds made is gone again: no mapping, no extra open of
  // the device, the same lowest free descriptor.
  EXPECT_EQ(proc->mm().mapCount(), 0U);
  EXPECT_EQ(iMmapCount(*dev), 0U);
  EXPECT_EQ(dev->openCount(), 1);  // the fixture's own device fd
  EXPECT_EQ(proc->open("/dev/vfio/vfio", O_RDWR), firstFree);
}

// The cdev path from two kernels at once (the old function-static inode map
// raced even there), and each device keeps the inode of its own node.
TEST_P(ApiHostile, Finding7_CdevOpensOnTwoKernels) {
  struct System {
    std::unique_ptr<Kernel> kernel;
    VfioDevice* dev = nullptr;
    std::shared_ptr<Process> proc;
    int bad = 0;
    std::set<const Inode*> inodes;
  };
  std::vector<System> systems(2);
  for (System& s : systems) {
    KernelConfig cfg;
    cfg.design = GetParam();
    s.kernel = *Kernel::create(cfg);
    s.dev = &s.kernel->addStandardDevice();
    s.proc = Process::spawn(*s.kernel, "vmm");
  }
  std::barrier start(2);
  auto worker = [&](System& s) {
    start.arrive_and_wait();
    for (int i = 0; i < kRounds; ++i) {
      const long cdev = s.proc->open(s.kernel->cdevPath(*s.dev), O_RDWR);
      const long iommufd = s.proc->open("/dev/iommu", O_RDWR);
      if (cdev < 0 || iommufd < 0) {
        ++s.bad;
        continue;
      }
      s.inodes.insert(&s.proc->deviceFile(static_cast<int>(cdev))->fInode());
      vfio_device_bind_iommufd bind{.argsz = sizeof(vfio_device_bind_iommufd)};
      bind.iommufd = static_cast<decltype(bind.iommufd)>(iommufd);
      s.bad += s.proc->ioctl(static_cast<int>(cdev), VFIO_DEVICE_BIND_IOMMUFD, &bind) != 0;
      const long va = s.proc->mmap(0, kBar0Len, prot::kRead | prot::kWrite, map::kShared,
                                   static_cast<int>(cdev), kBar0Offset);
      s.bad += va <= 0;
      if (va > 0) {
        s.bad += s.proc->thread().load(static_cast<uint64_t>(va)).sig.signo != 0;
        s.bad += s.proc->munmap(static_cast<uint64_t>(va), kBar0Len) != 0;
      }
      s.bad += s.proc->close(static_cast<int>(cdev)) != 0;
      s.bad += s.proc->close(static_cast<int>(iommufd)) != 0;
    }
  };
  testing::BoundThread a(kernel->context(), worker, std::ref(systems[0]));
  testing::BoundThread b(kernel->context(), worker, std::ref(systems[1]));
  a.join();
  b.join();
  for (System& s : systems) {
    EXPECT_EQ(s.bad, 0);
    ASSERT_EQ(s.inodes.size(), 1U);
    EXPECT_EQ(*s.inodes.begin(), &s.kernel->cdevInode(*s.dev));
    EXPECT_EQ(s.dev->closeDeviceCalls(), static_cast<uint64_t>(kRounds));
    EXPECT_EQ(s.dev->openCount(), 0);
  }
  EXPECT_NE(&systems[0].kernel->cdevInode(*systems[0].dev),
            &systems[1].kernel->cdevInode(*systems[1].dev));
}

TEST_P(ApiHostile, Finding7_PidsStayUniqueWhenTwoHostThreadsSpawnAndFork) {
  std::vector<std::vector<int>> pids(2);
  std::vector<std::shared_ptr<Process>> keep(2);
  std::barrier start(2);
  auto worker = [&](size_t w) {
    std::shared_ptr<Process> p = Process::spawn(*kernel, "p");
    start.arrive_and_wait();
    for (int i = 0; i < kRounds; ++i) {
      std::shared_ptr<Process> child = p->fork();
      if (child != nullptr) pids[w].push_back(child->pid());
      pids[w].push_back(p->addThread(1)->task().tid);
      pids[w].push_back(Process::spawn(*kernel, "q")->pid());
    }
    keep[w] = p;
  };
  testing::BoundThread a(kernel->context(), worker, size_t{0});
  testing::BoundThread b(kernel->context(), worker, size_t{1});
  a.join();
  b.join();
  std::set<int> all;
  for (auto& v : pids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(2 * 3 * kRounds));
}

// Group opens (GET_DEVICE_FD) against cdev opens of the same device: each
// side is refused while the other holds the device, never both admitted.
TEST_P(ApiHostile, Finding7_GroupAndCdevOpensExcludeEachOther) {
  ASSERT_EQ(proc->close(fd), 0);  // the device is closed; the group stays
  std::shared_ptr<Process> other = Process::spawn(*kernel, "other");
  std::atomic<int> groupOpens{0};
  std::atomic<int> cdevOpens{0};
  std::atomic<int> both{0};
  std::barrier start(2);
  testing::BoundThread g(kernel->context(), [&] {
    start.arrive_and_wait();
    for (int i = 0; i < 4 * kRounds; ++i) {
      const long d =
          proc->ioctl(groupFd, VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(dev->name().c_str()));
      if (d < 0) continue;
      ++groupOpens;
      proc->close(static_cast<int>(d));
    }
  });
  testing::BoundThread c(kernel->context(), [&] {
    start.arrive_and_wait();
    for (int i = 0; i < 4 * kRounds; ++i) {
      const long d = other->open(kernel->cdevPath(*dev), O_RDWR);
      if (d < 0) continue;
      ++cdevOpens;
      // While the cdev is held, the group path must not have the device.
      if (dev->openCount() != 0) ++both;
      other->close(static_cast<int>(d));
    }
  });
  g.join();
  c.join();
  EXPECT_EQ(both.load(), 0);
  EXPECT_GT(groupOpens.load() + cdevOpens.load(), 0);
  EXPECT_EQ(dev->openCount(), 0);
}

TEST_P(ApiHostile, Finding8_CallsOnAnExitedProcessAreRefused) {
  const long va = map(kBar0Offset, kBar0Len);
  ASSERT_GT(va, 0);
  const int container = static_cast<int>(proc->open("/dev/vfio/vfio", O_RDWR));
  proc->exit();
  // The descriptor table is gone: every fd is -EBADF, a new one -EMFILE.
  EXPECT_EQ(proc->open("/dev/vfio/vfio", O_RDWR), -24);
  EXPECT_EQ(proc->open(kernel->groupPath(*dev), O_RDWR), -24);
  uint32_t v = 0;
  EXPECT_EQ(proc->pread(fd, &v, 4, kConfigOffset), -9);
  EXPECT_EQ(proc->pwrite(fd, &v, 4, kConfigOffset), -9);
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_RESET, nullptr), -9);
  EXPECT_EQ(proc->ioctl(container, VFIO_SET_IOMMU, ioctlArg(VFIO_TYPE1v2_IOMMU)), -9);
  EXPECT_EQ(proc->close(fd), -9);
  EXPECT_EQ(map(kBar0Offset, kBar0Len), -9);
  // The address space is gone: -ENOMEM (munmap: -EINVAL).
  EXPECT_EQ(proc->mmap(0, 4096, prot::kRead | prot::kWrite, map::kPrivate | map::kAnonymous, -1, 0),
            -12);
  const auto a = static_cast<uint64_t>(va);
  EXPECT_EQ(proc->munmap(a, kBar0Len), -22);
  EXPECT_EQ(proc->mprotect(a, kBar0Len, prot::kRead), -12);
  EXPECT_EQ(proc->madvise(a, kBar0Len, madv::kDontFork), -12);
  EXPECT_EQ(proc->mlock(a, kBar0Len), -12);
  EXPECT_EQ(proc->mremap(a, kBar0Len, kBar0Len / 2, 0), -12);
  std::vector<uint8_t> vec;
  EXPECT_EQ(proc->mincore(a, kBar0Len, &vec), -12);
  long error = 0;
  EXPECT_EQ(proc->fork(&error), nullptr);
  EXPECT_EQ(error, -12);
  EXPECT_EQ(proc->addThread(1), nullptr);
  EXPECT_EQ(proc->maps(), "");
  EXPECT_EQ(proc->thread().load(a).sig.code, SigInfo::kSegvMaperr);
  EXPECT_EQ(dev->openCount(), 0);
}

// The finding's crash: a mapping made after exit() outlived the Process, and
// a later zap of the device walked its freed VMA (ASan in CI).
TEST_P(ApiHostile, Finding8_NoMappingAfterExitSurvivesToTheNextZap) {
  std::shared_ptr<File> file = proc->deviceFile(fd)->shared_from_this();
  proc->exit();
  // What a syscall racing exit() would reach: the mm itself refuses.
  auto r = proc->mm().mmap(VirtAddr(0), kBar0Len, prot::kRead | prot::kWrite, map::kShared, file,
                           kBar0Offset);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errno::kENOMEM);
  file.reset();
  proc.reset();
  EXPECT_EQ(iMmapCount(*dev), 0U);
  // Another VMM opens the device and disables memory: the zap walks i_mmap.
  proc = Process::spawn(*kernel, "next");
  fd = openGroupPath(*proc);
  ASSERT_GT(map(kBar0Offset, kBar0Len), 0);
  setMem(false);
  EXPECT_EQ(iMmapCount(*dev), 1U);
}

TEST_P(ApiHostile, Finding8_ExitRacingMmapLeavesNothingBehind) {
  std::barrier start(2);
  std::atomic<int> unexpected{0};
  testing::BoundThread mapper(kernel->context(), [&] {
    start.arrive_and_wait();
    for (int i = 0; i < 4 * kRounds; ++i) {
      const long b = map(kBar0Offset, kBar0Len);
      const long anon =
          proc->mmap(0, 4096, prot::kRead | prot::kWrite, map::kPrivate | map::kAnonymous, -1, 0);
      const long o = proc->open("/dev/vfio/vfio", O_RDWR);
      // Success, or the refusal of a dead task.
      unexpected +=
          (b <= 0 && b != -9 && b != -12) + (anon <= 0 && anon != -12) + (o < 0 && o != -24);
    }
  });
  start.arrive_and_wait();
  proc->exit();
  mapper.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(proc->mm().mapCount(), 0U);
  EXPECT_EQ(iMmapCount(*dev), 0U);
  EXPECT_EQ(proc->open("/dev/vfio/vfio", O_RDWR), -24);
  EXPECT_EQ(dev->openCount(), 0);
}

TEST_P(ApiHostile, Finding11_NullBuffersAreEfault) {
  EXPECT_EQ(proc->pread(fd, nullptr, 4, kConfigOffset), -14);
  EXPECT_EQ(proc->pwrite(fd, nullptr, 4, kConfigOffset + kPciCommand), -14);
  EXPECT_EQ(proc->pread(fd, nullptr, 4, kBar0Offset), -14);
  EXPECT_EQ(proc->pread(fd, nullptr, 0, kBar0Offset), 0);  // nothing to copy
  EXPECT_EQ(configRead(kPciCommand, 2) & kPciCommandMemory, kPciCommandMemory);
  const long va = map(kBar0Offset, kBar0Len);
  ASSERT_GT(va, 0);
  EXPECT_EQ(proc->mincore(static_cast<uint64_t>(va), kBar0Len, nullptr), -14);
  // The range is checked first, as in Linux.
  EXPECT_EQ(proc->mincore(static_cast<uint64_t>(va) + kBar0Len, 4096, nullptr), -12);
  EXPECT_EQ(proc->mincore(static_cast<uint64_t>(va) + 1, 4096, nullptr), -22);
}

TEST_P(ApiHostile, Finding11_AddThreadOnACpuTheKernelLacksIsRefused) {
  const unsigned cpus = kernel->machine().cpuCount();
  EXPECT_EQ(proc->addThread(cpus), nullptr);
  EXPECT_EQ(proc->addThread(~0U), nullptr);
  EXPECT_EQ(proc->threadCount(), 1U);
  Thread* last = proc->addThread(cpus - 1);
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(proc->threadCount(), 2U);
  const long va = map(kBar0Offset, kBar0Len);
  ASSERT_GT(va, 0);
  EXPECT_EQ(last->load(static_cast<uint64_t>(va)).sig.signo, 0);
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, ApiHostile, ::testing::ValuesIn(allDesigns()),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
