// The prefault design (issue 5, docs/design-prefault.md): after memory decode
// comes back every mapping is filled again, without inverting the fault
// path's lock order, racing anything else the mm does.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <mutex>
#include <thread>

#include "base/byte_units.h"
#include "bound_context.h"
#include "hw/page_table_arena.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

constexpr uint64_t kH = 0x7f0000000000;       // 1 GiB aligned: BAR2 (Setup H)
constexpr uint64_t kBar0Va = 0x7e0000000000;  // BAR0, 64 KiB

// huge-fault and prefault side by side: the same steps, the faults differ.
class PrefaultTest : public VfioTest {
 protected:
  void mapAndTouchAll() {
    ASSERT_EQ(map(kBar2Offset, 2 * kGiB, kH), static_cast<long>(kH));
    ASSERT_EQ(map(kBar0Offset, 64 * kKiB, kBar0Va), static_cast<long>(kBar0Va));
    touchAll();
  }
  // One read per 4 KiB page of BAR0 and per 2 MiB of BAR2; all must work.
  void touchAll() {
    for (uint64_t off = 0; off < 64 * kKiB; off += 4 * kKiB)
      ASSERT_EQ(touch(kBar0Va + off).sig.signo, 0);
    for (uint64_t off = 0; off < 2 * kGiB; off += 2 * kMiB) ASSERT_EQ(touch(kH + off).sig.signo, 0);
  }
  // Faults a full touch takes now.
  uint64_t faultsOfFullTouch() {
    const uint64_t before = minFlt();
    touchAll();
    return minFlt() - before;
  }
  bool prefault() const { return design() == DesignKind::kPrefault; }
};

TEST_P(PrefaultTest, DecodeToggleThenFullTouchTakesNoFault) {
  mapAndTouchAll();
  setMem(false);
  EXPECT_EQ(leaves(kH, 2 * kGiB).total() + leaves(kBar0Va, 64 * kKiB).total(), 0U);
  setMem(true);
  if (prefault()) {
    EXPECT_EQ(leaves(kH, 2 * kGiB).pud, 2U);  // refilled with the largest entries
    EXPECT_EQ(leaves(kBar0Va, 64 * kKiB).pte, 16U);
    EXPECT_EQ(faultsOfFullTouch(), 0U);
  } else {
    EXPECT_EQ(faultsOfFullTouch(), 2U + 16U);  // huge-fault refaults every block
  }
  EXPECT_EQ(kernel->pciHost().decodeViolationCount(), 0U);
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

TEST_P(PrefaultTest, DeviceResetThenFullTouchTakesNoFault) {
  mapAndTouchAll();
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_RESET, nullptr), 0);
  EXPECT_EQ(faultsOfFullTouch(), prefault() ? 0U : 18U);
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

TEST_P(PrefaultTest, HotResetThenFullTouchTakesNoFault) {
  mapAndTouchAll();
  HotResetArg reset = hotResetArg({groupFd});
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, reset.get()), 0);
  EXPECT_EQ(faultsOfFullTouch(), prefault() ? 0U : 18U);
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

// Regression: the refill of one device must not run while the hot reset
// still holds the other devices' memory_locks (it takes mmap_locks).
TEST_P(PrefaultTest, HotResetOfATwoDeviceSetRefillsBothWithoutLockdepReports) {
  lockdep::resetGraph();
  PciBus& bus = kernel->addBus(0x20);
  auto a = kernel->addVfioDevice(bus, standardDeviceConfig(bus.number(), 0));
  auto b = kernel->addVfioDevice(bus, standardDeviceConfig(bus.number(), 1));
  ASSERT_TRUE(a && b);
  dev = *a;
  const int fdA = openGroupPath(*proc);
  const int groupA = groupFd;
  dev = *b;
  const int fdB = openGroupPath(*proc);
  const int groupB = groupFd;
  const uint64_t vaA = 0x7a0000000000;
  const uint64_t vaB = 0x7b0000000000;
  ASSERT_EQ(proc->mmap(vaA, 64 * kMiB, prot::kRead, map::kShared | map::kFixed, fdA, kBar2Offset),
            static_cast<long>(vaA));
  ASSERT_EQ(proc->mmap(vaB, 64 * kMiB, prot::kRead, map::kShared | map::kFixed, fdB, kBar2Offset),
            static_cast<long>(vaB));
  ASSERT_EQ(touch(vaA).sig.signo, 0);
  ASSERT_EQ(touch(vaB).sig.signo, 0);
  HotResetArg reset = hotResetArg({groupA, groupB});
  ASSERT_EQ(proc->ioctl(fdA, VFIO_DEVICE_PCI_HOT_RESET, reset.get()), 0);
  const uint64_t before = minFlt();
  ASSERT_EQ(touch(vaA).sig.signo, 0);
  ASSERT_EQ(touch(vaB).sig.signo, 0);
  EXPECT_EQ(minFlt() - before, prefault() ? 0U : 2U);
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

TEST_P(PrefaultTest, LowPowerExitThenFullTouchTakesNoFault) {
  mapAndTouchAll();
  vfio_device_feature entry{.argsz = sizeof(vfio_device_feature)};
  entry.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY;
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_FEATURE, &entry), 0);
  EXPECT_EQ(leaves(kH, 2 * kGiB).total(), 0U);  // nothing refilled while engaged
  vfio_device_feature exit{.argsz = sizeof(vfio_device_feature)};
  exit.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT;
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_FEATURE, &exit), 0);
  EXPECT_EQ(faultsOfFullTouch(), prefault() ? 0U : 18U);
}

TEST_P(PrefaultTest, DisabledDecodeIsNeverRefilled) {
  mapAndTouchAll();
  setMem(false);
  // A D0 write while MEM is still off: nothing may be mapped.
  const auto pm = dev->pdev().pmCapOffset();
  ASSERT_TRUE(pm.has_value());
  ASSERT_EQ(configWrite(*pm + kPciPmCtrl, 0, 2), 2);
  EXPECT_EQ(leaves(kH, 2 * kGiB).total(), 0U);
  EXPECT_EQ(touch(kH).sig.signo, SigInfo::kSigbus);
}

TEST_P(PrefaultTest, FirstFaultFillsTheWholeVma) {
  ASSERT_EQ(map(kBar2Offset, 2 * kGiB, kH), static_cast<long>(kH));
  ASSERT_EQ(touch(kH).sig.signo, 0);
  EXPECT_EQ(leaves(kH, 2 * kGiB).pud, prefault() ? 2U : 1U);
}

TEST_P(PrefaultTest, ForkedChildIsRefilledToo) {
  mapAndTouchAll();
  auto child = proc->fork();
  ASSERT_NE(child, nullptr);
  setMem(false);
  EXPECT_EQ(touch(kH, child.get()).sig.signo, SigInfo::kSigbus);
  setMem(true);
  const uint64_t before = minFlt(child.get());
  ASSERT_EQ(touch(kH, child.get()).sig.signo, 0);
  EXPECT_EQ(minFlt(child.get()) - before, prefault() ? 0U : 1U);
}

INSTANTIATE_TEST_SUITE_P(HugeAndPrefault, PrefaultTest,
                         ::testing::Values(DesignKind::kHugeFault, DesignKind::kPrefault),
                         designParamName);

// The naive refill — inside the memory_lock write section — needs each mm's
// mmap_lock there: memory_lock -> mmap_lock against the fault path's
// mmap_lock -> memory_lock. lockdep says so although nothing deadlocks here.
class PrefaultLockOrderTest : public VfioTest {};

TEST_P(PrefaultLockOrderTest, NaiveRefillUnderMemoryLockIsACircularDependency) {
  DesignOptions naive;
  naive.prefaultNaiveUnderMemoryLock = true;
  lockdep::resetGraph();
  boot(DesignKind::kPrefault, "", naive);
  ASSERT_EQ(map(kBar0Offset, 64 * kKiB, kBar0Va), static_cast<long>(kBar0Va));
  ASSERT_EQ(touch(kBar0Va).sig.signo, 0);  // records mmap_lock -> memory_lock
  setMem(false);
  setMem(true);  // the naive refill takes mmap_lock under memory_lock
  EXPECT_GE(lockdep::reportCount(lockdep::ReportKind::kCircularDependency), 1U);
  EXPECT_TRUE(lockdep::hasDependency(kVfioMemoryLockClass, kMmapLockClass));
}

TEST_P(PrefaultLockOrderTest, RefillAfterTheLockIsReleasedKeepsTheOrder) {
  lockdep::resetGraph();
  boot(DesignKind::kPrefault);
  ASSERT_EQ(map(kBar0Offset, 64 * kKiB, kBar0Va), static_cast<long>(kBar0Va));
  ASSERT_EQ(touch(kBar0Va).sig.signo, 0);
  setMem(false);
  setMem(true);
  EXPECT_EQ(lockdep::reportCount(), 0U);
  EXPECT_FALSE(lockdep::hasDependency(kVfioMemoryLockClass, kMmapLockClass));
  EXPECT_TRUE(lockdep::hasDependency(kMmapLockClass, kVfioMemoryLockClass));
}

INSTANTIATE_TEST_SUITE_P(Prefault, PrefaultLockOrderTest, ::testing::Values(DesignKind::kPrefault),
                         designParamName);

// Refills racing munmap, mremap, fork/exit, faults and further zaps on real
// threads. Whatever the interleaving: no access reaches a disabled BAR, no
// entry survives a disable, lockdep stays silent, nothing leaks.
class PrefaultRaceTest : public VfioTest {
 protected:
  // With MEM off (the toggler holds no lock then): no process maps the BAR.
  void expectNothingMapped(std::vector<std::shared_ptr<Process>>& procs, std::mutex& mu) {
    std::lock_guard g(mu);
    for (auto& p : procs) {
      if (p->exited()) continue;
      Mm& mm = p->mm();
      ReadGuard mmap(mm.mmapLock());
      for (Vma* vma : mm.vmasMapping(dev->inode().mapping())) {
        uint64_t n = 0;
        mm.pageTable().forEachLeaf(vma->start(), vma->end(),
                                   [&](VirtAddr, PtLevel, uint64_t) { ++n; });
        EXPECT_EQ(n, 0U) << "an entry survived the disable";
      }
    }
  }
};

TEST_P(PrefaultRaceTest, RefillRacesMunmapMremapForkExitAndZaps) {
  const size_t tablesBefore = kernel->machine().pageTableArena().pagesInUse();
  ASSERT_EQ(map(kBar2Offset, 64 * kMiB, kH), static_cast<long>(kH));
  std::mutex procsMu;
  std::vector<std::shared_ptr<Process>> procs{proc};
  constexpr int kRounds = 40;
  std::atomic<bool> stop{false};
  std::barrier start(5);
  Thread& toucher = *proc->addThread(1);
  Thread& remapper = *proc->addThread(2);
  std::vector<testing::BoundThread> threads;
  threads.emplace_back(kernel->context(),
                       [&] {  // decode toggles: zap, then refill, again and again
                         start.arrive_and_wait();
                         for (int i = 0; i < kRounds; ++i) {
                           setMem(false);
                           expectNothingMapped(procs, procsMu);
                           setMem(true);
                         }
                         stop.store(true);
                       });
  threads.emplace_back(kernel->context(), [&] {  // faults
    start.arrive_and_wait();
    for (uint64_t n = 0; !stop.load(); ++n) (void)toucher.load(kH + (n % 32) * 2 * kMiB, 4);
  });
  threads.emplace_back(
      kernel->context(), [&] {  // munmap + mmap of a second mapping; mremap it back and forth
        start.arrive_and_wait();
        const uint64_t a = 0x7d0000000000;
        const uint64_t b = 0x7c0000000000;
        while (!stop.load()) {
          if (proc->mmap(a, 4 * kMiB, prot::kRead, map::kShared | map::kFixed, fd, kBar2Offset) !=
              static_cast<long>(a))
            ADD_FAILURE() << "mmap";
          (void)remapper.load(a, 4);
          if (proc->mremap(a, 4 * kMiB, 4 * kMiB, mremap::kMayMove | mremap::kFixed, b) !=
              static_cast<long>(b))
            ADD_FAILURE() << "mremap";
          EXPECT_EQ(proc->munmap(b, 4 * kMiB), 0);
        }
      });
  threads.emplace_back(kernel->context(), [&] {  // fork a child, touch from it, let it exit
    start.arrive_and_wait();
    while (!stop.load()) {
      auto child = proc->fork();
      ASSERT_NE(child, nullptr);
      {
        std::lock_guard g(procsMu);
        procs.push_back(child);
      }
      (void)child->thread().load(kH, 4);
      child->exit();
    }
  });
  start.arrive_and_wait();
  for (auto& t : threads) t.join();

  EXPECT_EQ(kernel->pciHost().decodeViolationCount(), 0U);  // invariant 1
  EXPECT_EQ(lockdep::reportCount(), 0U);                    // invariant 5
  for (auto& p : procs) {
    p->exit();
    EXPECT_EQ(p->mm().pageTable().pgtablesBytes(), 0U);  // invariant 6
    EXPECT_EQ(p->mm().mapCount(), 0U);
  }
  procs.erase(procs.begin() + 1, procs.end());  // the children's mms go
  EXPECT_EQ(kernel->machine().pageTableArena().pagesInUse(), tablesBefore);
  ReadGuard i(dev->inode().mapping().iMmapRwsem());
  EXPECT_EQ(dev->inode().mapping().vmaCount(), 0U);
}

INSTANTIATE_TEST_SUITE_P(Prefault, PrefaultRaceTest,
                         ::testing::Values(DesignKind::kHugeFault, DesignKind::kPrefault),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
