// x86 PAT's memtype tree (mm-pfnmap.md §7.1; memtype_interval.c of 6.1-6.15):
// which frees match a reservation, and what the kernel logs when none does.
#include "mm/pat_memtype.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/kernel_log.h"
#include "bound_context.h"
#include "mm/mmu_gather.h"
#include "pfnmap_fixture.h"
#include "sync/lockdep.h"

namespace vfiomm::testing {
namespace {

using Range = PatMemtype::Range;

constexpr PhysAddr kP(0xf0000000);

// The messages name current: the test's thread says it is qemu, pid 7, on
// CPU 2, and says again who it was afterwards.
class PatMemtypeTest : public ::testing::Test {
 protected:
  void SetUp() override { lockdep::setThreadIdentity("qemu", 7, 2); }
  void TearDown() override { lockdep::setThreadIdentity(was.comm, was.pid, was.cpu); }

  const lockdep::ThreadIdentity was = lockdep::threadIdentity();
  BoundContext boundContext;
  KernelLog log;
  PatMemtype memtype{log};
};

TEST_F(PatMemtypeTest, PAT_01_ExactFreeErasesTheReservationSilently) {
  memtype.reserve(kP, kP + 0x10000);
  EXPECT_EQ(memtype.ranges(), (std::vector<Range>{{kP, kP + 0x10000}}));
  EXPECT_TRUE(memtype.free(kP, kP + 0x10000));
  EXPECT_TRUE(memtype.ranges().empty());
  EXPECT_TRUE(log.lines().empty());
}

TEST_F(PatMemtypeTest, PAT_02_FreeOfATailShrinksTheReservation) {
  memtype.reserve(kP, kP + 0x10000);
  EXPECT_TRUE(memtype.free(kP + 0x4000, kP + 0x10000));
  EXPECT_EQ(memtype.ranges(), (std::vector<Range>{{kP, kP + 0x4000}}));
  EXPECT_TRUE(log.lines().empty());
}

TEST_F(PatMemtypeTest, PAT_02_FreeOfAHeadOrMiddleFreesNothingAndLogsInclusiveBounds) {
  memtype.reserve(kP, kP + 0x10000);
  EXPECT_FALSE(memtype.free(kP, kP + 0x1000));
  EXPECT_FALSE(memtype.free(kP + 0x2000, kP + 0x3000));
  EXPECT_EQ(memtype.ranges(), (std::vector<Range>{{kP, kP + 0x10000}}));
  EXPECT_EQ(log.lines(),
            (std::vector<std::string>{
                "x86/PAT: qemu:7 freeing invalid memtype [mem 0xf0000000-0xf0000fff]",
                "x86/PAT: qemu:7 freeing invalid memtype [mem 0xf0002000-0xf0002fff]"}));
}

// %#010Lx pads to ten characters with the 0x: a low address keeps its
// zeros, a high one is printed whole.
TEST_F(PatMemtypeTest, PAT_02_LogPadsToTenCharacters) {
  lockdep::setThreadIdentity("a", 1, -1);
  EXPECT_FALSE(memtype.free(PhysAddr(0x1000), PhysAddr(0x2000)));
  EXPECT_FALSE(memtype.free(PhysAddr(0x4000000000), PhysAddr(0x4000001000)));
  EXPECT_EQ(log.lines(),
            (std::vector<std::string>{
                "x86/PAT: a:1 freeing invalid memtype [mem 0x00001000-0x00001fff]",
                "x86/PAT: a:1 freeing invalid memtype [mem 0x4000000000-0x4000000fff]"}));
}

// A fork child's copy reserves the same range again: two entries, each
// freed by one exact free.
TEST_F(PatMemtypeTest, PAT_04_OverlappingReservationsAreFreedOneAtATime) {
  memtype.reserve(kP, kP + 0x10000);
  memtype.reserve(kP, kP + 0x10000);
  EXPECT_TRUE(memtype.free(kP, kP + 0x10000));
  EXPECT_EQ(memtype.ranges().size(), 1U);
  EXPECT_TRUE(memtype.free(kP, kP + 0x10000));
  EXPECT_FALSE(memtype.free(kP, kP + 0x10000));
  EXPECT_TRUE(memtype.ranges().empty());
}

// An exact match anywhere wins over an end match met first.
TEST_F(PatMemtypeTest, PAT_02_ExactMatchBeforeEndMatch) {
  memtype.reserve(kP, kP + 0x10000);
  memtype.reserve(kP + 0x8000, kP + 0x10000);
  EXPECT_TRUE(memtype.free(kP + 0x8000, kP + 0x10000));
  EXPECT_EQ(memtype.ranges(), (std::vector<Range>{{kP, kP + 0x10000}}));
}

TEST_F(PatMemtypeTest, PAT_03_EachWarnSitePrintsOncePerBoot) {
  memtype.warnOnce(PatMemtype::WarnSite::kUntrackPfn);
  memtype.warnOnce(PatMemtype::WarnSite::kUntrackPfn);
  lockdep::setThreadIdentity("qemu", 7, -1);
  memtype.warnOnce(PatMemtype::WarnSite::kTrackPfnCopy);
  EXPECT_EQ(log.lines(), (std::vector<std::string>{
                             "------------[ cut here ]------------",
                             "WARNING: CPU: 2 PID: 7 at arch/x86/mm/pat/memtype.c untrack_pfn",
                             "CPU: 2 PID: 7 Comm: qemu",
                             "---[ end trace ]---",
                             "------------[ cut here ]------------",
                             "WARNING: CPU: ? PID: 7 at arch/x86/mm/pat/memtype.c track_pfn_copy",
                             "CPU: ? PID: 7 Comm: qemu",
                             "---[ end trace ]---",
                         }));
}

TEST_F(PatMemtypeTest, PAT_01_DebugfsListsEachReservationWithItsExclusiveEnd) {
  EXPECT_EQ(memtype.memtypeList(), "PAT memtype list:\n");
  memtype.reserve(PhysAddr(0x4000000000), PhysAddr(0x4080000000));
  memtype.reserve(kP, kP + 0x10000);
  EXPECT_EQ(memtype.memtypeList(),
            "PAT memtype list:\n"
            "PAT: [mem 0x00000000f0000000-0x00000000f0010000] uncached-minus\n"
            "PAT: [mem 0x0000004000000000-0x0000004080000000] uncached-minus\n");
}

// track_pfn_copy() reads the pfn at the parent's vm_start: with no PTE
// there it WARNs and fork fails with EINVAL, reserving nothing. No call
// sequence of the model's designs leaves a VM_PAT VMA so; the test clears
// the entry behind untrack_pfn()'s back.
class PatForkTest : public MmTest {
 protected:
  void SetUp() override {
    lockdep::setReportSink({});
    startProfile("linux-6.1");
    mm->setPatMemtype(&memtype);
  }
  // The mm's exit untracks its VMAs: before the tracking goes.
  void TearDown() override {
    task.reset();
    mm.reset();
  }

  KernelLog log;
  PatMemtype memtype{log};
};

TEST_F(PatForkTest, PAT_04_ForkOfAVmPatVmaWithoutItsFirstPteFails) {
  auto va = mapBar(64 * 1024);
  ASSERT_TRUE(va);
  mm->mmapWriteLock();
  Vma* vma = mm->findVma(*va);
  const bool filled = vma != nullptr &&
                      remapPfnRange(*vma, *va, Pfn::fromPhys(kBarBase), 64 * 1024, vma->pageProt());
  if (filled) {
    MmuGather tlb(*mm);
    mm->pageTable().zapRange(*va, *va + kPageSize, tlb);
  }
  mm->mmapWriteUnlock();
  ASSERT_TRUE(filled);
  EXPECT_TRUE(mm->vmaSnapshot().at(0).flags & vm::kPat);
  EXPECT_EQ(mm->fork().error(), Errno::kEINVAL);
  EXPECT_EQ(memtype.ranges(), (std::vector<Range>{{kBarBase, kBarBase + 64 * 1024}}));
  const std::vector<std::string> lines = log.lines();
  ASSERT_EQ(lines.size(), 4U);
  EXPECT_NE(lines[1].find("at arch/x86/mm/pat/memtype.c track_pfn_copy"), std::string::npos);
}

}  // namespace
}  // namespace vfiomm::testing
