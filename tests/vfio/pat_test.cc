// x86 PAT side effects of G1 (conformance.md PAT-01..04, mm-pfnmap.md §7.1):
// G1's whole-VMA fill reserves the VMA's physical range, and every zap of
// a VM_PAT VMA frees the range the PTE at vm_start maps, as long as the
// VMA, which with the split rules of 6.1 fails (and logs) for a head piece.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/kernel_log.h"
#include "kernel/kernel_profile.h"
#include "mm/pat_memtype.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

using Range = PatMemtype::Range;

constexpr uint64_t kVa = 0x7f0000000000;
constexpr uint64_t kBar0Len = 64 * kKiB;
constexpr PhysAddr kBar0Phys(0xf0000000);
constexpr PhysAddr kBar2Phys(0x4000000000);

class PatTest : public VfioTest {
 protected:
  void SetUp() override {}  // each test boots the era it needs

  void bootEra(const std::string& name) { bootProfile(DesignKind::kVmaList, era(name)); }
  static KernelProfile era(const std::string& name) { return *KernelProfile::byName(name); }

  // BAR0 mapped at kVa and filled by a first touch.
  void mapAndFillBar0() {
    ASSERT_EQ(map(kBar0Offset, kBar0Len, kVa), static_cast<long>(kVa));
    ASSERT_EQ(touch(kVa).sig.signo, 0);
    ASSERT_EQ(reservations(), (std::vector<Range>{{kBar0Phys, kBar0Phys + kBar0Len}}));
  }

  std::vector<Range> reservations() { return kernel->patMemtype().ranges(); }
  std::vector<std::string> dmesg() { return kernel->machine().log().lines(); }
  std::string invalidFree(PhysAddr first, PhysAddr last) {
    return fmt::format("x86/PAT: qemu:{} freeing invalid memtype [mem {:#010x}-{:#010x}]",
                       proc->pid(), first.value(), last.value());
  }
  // The untrack_pfn() WARN splats in the log.
  size_t untrackWarns() {
    size_t n = 0;
    for (const std::string& l : dmesg())
      if (l.find("at arch/x86/mm/pat/memtype.c untrack_pfn") != std::string::npos) ++n;
    return n;
  }
};

TEST_F(PatTest, PAT_01_FirstTouchReservesTheVmaRangeAndMemOffFreesIt) {
  bootEra("linux-6.1");
  ASSERT_EQ(map(kBar2Offset, 2 * kMiB, kVa), static_cast<long>(kVa));
  EXPECT_TRUE(reservations().empty());  // mmap() reserves nothing
  ASSERT_EQ(touch(kVa + 0x5000).sig.signo, 0);
  const std::vector<Range> whole{{kBar2Phys, kBar2Phys + 2 * kMiB}};
  EXPECT_EQ(reservations(), whole);
  EXPECT_EQ(kernel->patMemtype().memtypeList(),
            "PAT memtype list:\n"
            "PAT: [mem 0x0000004000000000-0x0000004000200000] uncached-minus\n");
  setMem(false);
  EXPECT_TRUE(reservations().empty());
  setMem(true);
  ASSERT_EQ(touch(kVa).sig.signo, 0);
  EXPECT_EQ(reservations(), whole);
  EXPECT_TRUE(dmesg().empty());
}

TEST_F(PatTest, PAT_01_UnmapAndExitFreeTheReservation) {
  bootEra("linux-6.1");
  mapAndFillBar0();
  ASSERT_EQ(proc->munmap(kVa, kBar0Len), 0);
  EXPECT_TRUE(reservations().empty());
  mapAndFillBar0();
  proc->exit();
  EXPECT_TRUE(reservations().empty());
  EXPECT_TRUE(dmesg().empty());
}

// Later designs insert entry by entry and reserve nothing.
TEST_F(PatTest, PAT_01_G2AndLaterReserveNothing) {
  for (DesignKind design : {DesignKind::kAddressSpace, DesignKind::kHugeFault}) {
    boot(design);
    ASSERT_EQ(map(kBar0Offset, kBar0Len, kVa), static_cast<long>(kVa));
    ASSERT_EQ(touch(kVa).sig.signo, 0);
    EXPECT_TRUE(reservations().empty());
  }
}

TEST_F(PatTest, PAT_02_UnmapOfTheFirstPageLogsItsRange) {
  bootEra("linux-6.1");
  mapAndFillBar0();
  ASSERT_EQ(proc->munmap(kVa, kPageSize), 0);
  EXPECT_EQ(dmesg(), std::vector<std::string>{invalidFree(kBar0Phys, kBar0Phys + 0xfff)});
  EXPECT_EQ(reservations(), (std::vector<Range>{{kBar0Phys, kBar0Phys + kBar0Len}}));
}

// The piece above the hole ends where the reservation ends: it shrinks.
TEST_F(PatTest, PAT_02_UnmapOfAMiddleRangeLogsNothing) {
  bootEra("linux-6.1");
  mapAndFillBar0();
  ASSERT_EQ(proc->munmap(kVa + 0x4000, 0x4000), 0);
  EXPECT_TRUE(dmesg().empty());
  EXPECT_EQ(reservations(), (std::vector<Range>{{kBar0Phys, kBar0Phys + 0x4000}}));
}

TEST_F(PatTest, PAT_02_MprotectOfAMiddleRangeLogsTheLowerPiece) {
  bootEra("linux-6.1");
  mapAndFillBar0();
  ASSERT_EQ(proc->mprotect(kVa + 0x4000, 0x4000, prot::kRead), 0);
  EXPECT_EQ(dmesg(), std::vector<std::string>{invalidFree(kBar0Phys, kBar0Phys + 0x3fff)});
  EXPECT_EQ(reservations(), (std::vector<Range>{{kBar0Phys, kBar0Phys + 0x8000}}));
}

// The destination is opened while still empty: untrack_pfn() finds no PTE
// at its vm_start. The reservation moves with the entries, and the
// destination's munmap frees it.
TEST_F(PatTest, PAT_03_MremapMoveWarnsOncePerBoot) {
  bootEra("linux-6.1");
  mapAndFillBar0();
  const uint64_t dest = kVa + 16 * kMiB;
  const uint64_t noPte = CounterSet::current().snapshot().get("mm.untrack_pfn.no_pte");
  ASSERT_EQ(proc->mremap(kVa, kBar0Len, kBar0Len, mremap::kMayMove | mremap::kFixed, dest),
            static_cast<long>(dest));
  EXPECT_EQ(untrackWarns(), 1U);
  // Only the destination's: untrack_pfn_moved() cleared the source's
  // VM_PAT before its unmap.
  EXPECT_EQ(CounterSet::current().snapshot().get("mm.untrack_pfn.no_pte") - noPte, 1U);
  EXPECT_EQ(reservations(), (std::vector<Range>{{kBar0Phys, kBar0Phys + kBar0Len}}));
  ASSERT_EQ(proc->mremap(dest, kBar0Len, kBar0Len, mremap::kMayMove | mremap::kFixed, kVa),
            static_cast<long>(kVa));
  EXPECT_EQ(untrackWarns(), 1U);  // WARN_ON_ONCE
  ASSERT_EQ(proc->munmap(kVa, kBar0Len), 0);
  EXPECT_TRUE(reservations().empty());
}

// Per era: with fork_clears_vm_pat (linux-6.1 as shipped) the child's
// ->open finds no VM_PAT; without it (mainline 6.9, 6.1.90-6.1.94) it finds
// VM_PAT and no PTE yet. Either way the copy reserves the child's range,
// and each exit frees its own.
TEST_F(PatTest, PAT_04_ForkWarnsOnlyWithoutTheClear) {
  for (const char* name : {"linux-6.1", "linux-6.9"}) {
    SCOPED_TRACE(name);
    bootEra(name);
    mapAndFillBar0();
    std::shared_ptr<Process> child = proc->fork();
    ASSERT_NE(child, nullptr);
    EXPECT_EQ(untrackWarns(), era(name).mm.forkClearsVmPat ? 0U : 1U);
    EXPECT_EQ(reservations().size(), 2U);
    child->exit();
    EXPECT_EQ(reservations().size(), 1U);
    proc->exit();
    EXPECT_TRUE(reservations().empty());
  }
}

// 6.1.0-6.1.89 opened the child after the copy: its ->open zap frees the
// child's reservation straight away, silently.
TEST_F(PatTest, PAT_04_OpenAfterTheCopyFreesTheChildsReservation) {
  KernelProfile p = era("linux-6.1");
  p.mm.forkOpenBeforeCopy = false;
  bootProfile(DesignKind::kVmaList, p);
  mapAndFillBar0();
  std::shared_ptr<Process> child = proc->fork();
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(reservations(), (std::vector<Range>{{kBar0Phys, kBar0Phys + kBar0Len}}));
  EXPECT_TRUE(dmesg().empty());
}

// remap_pfn_range() stops setting VM_PAT with the PAT rework (≈6.16).
TEST_F(PatTest, PAT_01_NoReservationWithoutVmPat) {
  KernelProfile p = era("linux-6.1");
  p.mm.vmPatOnFill = false;
  bootProfile(DesignKind::kVmaList, p);
  ASSERT_EQ(map(kBar0Offset, kBar0Len, kVa), static_cast<long>(kVa));
  ASSERT_EQ(touch(kVa).sig.signo, 0);
  EXPECT_TRUE(reservations().empty());
}

}  // namespace
}  // namespace vfiomm::testing
