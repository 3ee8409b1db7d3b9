// The invariant monitors (ARCHITECTURE.md 1-6) catch what they must, and
// stay quiet where the design is sound.
#include "uapi/invariant_monitor.h"

#include <gtest/gtest.h>

#include <thread>

#include "../vfio/line_up.h"
#include "../vfio/vfio_fixture.h"
#include "base/byte_units.h"

namespace vfiomm::testing {
namespace {

class InvariantMonitorTest : public VfioTest {};

TEST_P(InvariantMonitorTest, SoundDesignsStayQuietThroughZapsAndExit) {
  InvariantMonitor monitor(*kernel);
  const uint64_t h = 0x7f0000000000;
  ASSERT_EQ(map(kBar2Offset, 2 * kGiB, h), static_cast<long>(h));
  for (uint64_t off = 0; off < 64 * kMiB; off += 2 * kMiB) ASSERT_EQ(touch(h + off).sig.signo, 0);
  auto child = proc->fork();
  ASSERT_NE(child, nullptr);
  setMem(false);
  EXPECT_EQ(touch(h, child.get()).sig.signo, SigInfo::kSigbus);
  setMem(true);
  ASSERT_EQ(touch(h).sig.signo, 0);
  monitor.checkEntries({proc, child});
  child->exit();
  proc->exit();
  monitor.checkLeaks({proc, child});
  EXPECT_EQ(monitor.counts().total(), 0U)
      << (monitor.findings().empty() ? "" : monitor.findings()[0]);
}

// Issue 17 finding 2: munmap has cleared the entries and not yet flushed
// the TLBs when the device's zap visits the VMA (still in i_mmap until
// munmap unlinks it). The zap finds nothing to clear; it must still not
// return while a CPU translates the range. tlb_finish_mmu() flushes the
// whole mm when another gather of it is pending.
TEST_P(InvariantMonitorTest, ZAP_04_ZapRacingMunmapLeavesNoTlbEntry_Finding2) {
  InvariantMonitor monitor(*kernel);
  const uint64_t h = 0x7f0000000000;
  ASSERT_EQ(map(kBar0Offset, 64 * kKiB, h), static_cast<long>(h));
  ASSERT_EQ(touch(h).sig.signo, 0);
  Cpu& cpu = kernel->machine().cpu(proc->thread().cpu());
  const uint64_t mmId = proc->mm().id();
  ASSERT_TRUE(cpu.tlbTranslates(mmId, VirtAddr(h)));
  const uint32_t memOff = configRead(kPciCommand, 2) & ~uint32_t{kPciCommandMemory};
  AddressSpace& mapping = dev->pci().mapping();

  constexpr int kUnmapper = 1;
  constexpr int kZapper = 2;
  int visits = 0;
  mapping.setZapObserver([&](const Vma&) { visits += LineUp::role == kZapper ? 1 : 0; });
  bool clearedNotFlushed = false;
  LineUp lineUp;
  // munmap's unlink from i_mmap comes after its zap and before its flush.
  lineUp.on(kUnmapper, LineUp::Event::kBeforeAcquire, &mapping.iMmapRwsem(), 1, [&] {
    clearedNotFlushed = leaves(h, 64 * kKiB).total() == 0 && cpu.tlbTranslates(mmId, VirtAddr(h));
    std::thread([&] {
      LineUp::role = kZapper;
      EXPECT_EQ(proc->pwrite(fd, &memOff, 2, kConfigOffset + kPciCommand), 2);
    }).join();
  });
  {
    InstalledHook installed(lineUp);
    std::thread([&] {
      LineUp::role = kUnmapper;
      EXPECT_EQ(proc->munmap(h, 64 * kKiB), 0);
    }).join();
  }
  mapping.setZapObserver({});
  EXPECT_TRUE(clearedNotFlushed) << "the race window was not reached";
  EXPECT_EQ(visits, 1) << "the zap did not visit the VMA munmap was removing";
  EXPECT_EQ(monitor.counts().staleAfterZap, 0U)
      << (monitor.findings().empty() ? "" : monitor.findings()[0]);
  EXPECT_FALSE(cpu.tlbTranslates(mmId, VirtAddr(h)));
}

INSTANTIATE_TEST_SUITE_P(SoundDesigns, InvariantMonitorTest,
                         ::testing::Values(DesignKind::kAddressSpace, DesignKind::kFillVma,
                                           DesignKind::kHugeFault, DesignKind::kPrefault),
                         designParamName);

class InvariantMonitorCatchTest : public VfioTest {};

// G1 on an open-before-copy mm: the forked child is not listed, keeps its
// PTEs through MEM=0 and reads a BAR whose decode is off (FORK-02).
TEST_P(InvariantMonitorCatchTest, Invariant1CatchesTheG1ForkHole) {
  boot(DesignKind::kVmaList, "linux-6.9");
  InvariantMonitor monitor(*kernel);
  const long va = map(kBar0Offset, 64 * kKiB);
  ASSERT_GT(va, 0);
  ASSERT_EQ(touch(static_cast<uint64_t>(va)).sig.signo, 0);
  auto child = proc->fork();
  ASSERT_NE(child, nullptr);
  setMem(false);
  EXPECT_EQ(touch(static_cast<uint64_t>(va), child.get()).sig.signo, 0);  // no SIGBUS: the hole
  EXPECT_GE(monitor.counts().decodeViolations, 1U);
}

// G3.0 installs a PMD leaf whose pfn is not 2 MiB aligned (HUGE-05).
TEST_P(InvariantMonitorCatchTest, Invariant4CatchesTheG30MisalignedLeaf) {
  const uint64_t va = 0x7f0000200000;
  boot(DesignKind::kHugeFault, "linux-6.12.0");
  {
    InvariantMonitor monitor(*kernel);  // must not outlive its kernel
    ASSERT_EQ(map(kBar2Offset + 4 * kKiB, 4 * kMiB, va), static_cast<long>(va));
    ASSERT_EQ(touch(va).sig.signo, 0);
    monitor.checkEntries({proc});
    EXPECT_GE(monitor.counts().wrongEntries, 1U);
  }

  boot(DesignKind::kHugeFault, "linux-6.12");  // G3.2 falls back to a correct PTE
  InvariantMonitor fixed(*kernel);
  ASSERT_EQ(map(kBar2Offset + 4 * kKiB, 4 * kMiB, va), static_cast<long>(va));
  ASSERT_EQ(touch(va).sig.signo, 0);
  fixed.checkEntries({proc});
  EXPECT_EQ(fixed.counts().wrongEntries, 0U);
}

INSTANTIATE_TEST_SUITE_P(Holes, InvariantMonitorCatchTest, ::testing::Values(DesignKind::kVmaList),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
