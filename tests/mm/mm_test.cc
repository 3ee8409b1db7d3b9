// Memory syscalls on pfnmap VMAs (mm-pfnmap.md §3, §11, §12).
#include "mm/mm.h"

#include <gtest/gtest.h>

#include "base/counter.h"
#include "kernel/kernel_profile.h"
#include "mm/vm_commit.h"
#include "pfnmap_fixture.h"
#include "trace/tracer.h"

namespace vfiomm::testing {
namespace {

using MmCallsTest = MmTest;
constexpr VirtAddr kFixedVa(0x7f0000000000);

TEST_F(MmCallsTest, MMAP_01_SharedMappingGetsPfnmapFlagsAndNoEntries) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  auto vmas = mm->vmaSnapshot();
  ASSERT_EQ(vmas.size(), 1U);
  const VmFlags want = vm::kIo | vm::kPfnmap | vm::kDontExpand | vm::kDontDump;
  EXPECT_EQ(vmas[0].flags & want, want);
  EXPECT_EQ(leaves(*va, 64 << 10).total(), 0U);
}

TEST_F(MmCallsTest, MMAP_07_GenericChecksComeBeforeTheDriver) {
  EXPECT_EQ(mm->mmap(VirtAddr(0), 4096, prot::kRead, map::kShared, bar, 100).error(),
            Errno::kEINVAL);
  EXPECT_EQ(mm->mmap(VirtAddr(0), 0, prot::kRead, map::kShared, bar, 0).error(), Errno::kEINVAL);
  bar->setWritable(false);
  EXPECT_EQ(mm->mmap(VirtAddr(0), 4096, prot::kRead | prot::kWrite, map::kShared, bar, 0).error(),
            Errno::kEACCES);
  EXPECT_EQ(mm->mapCount(), 0U);
}

TEST_F(MmCallsTest, MMAP_10_PrivateWritableBeyondOvercommitIsEnomemBeforeTheDriver) {
  HostMemory gib;  // MemTotal + SwapTotal = 1 GiB
  gib.ramBytes = 768ULL << 20;
  gib.swapBytes = 256ULL << 20;
  VmCommit commit(gib, machine.log());
  mm->setVmCommit(&commit);
  const CounterSnapshot before = CounterSet::current().snapshot();
  auto r = mm->mmap(VirtAddr(0), 2ULL << 30, prot::kRead | prot::kWrite, map::kPrivate, bar, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errno::kENOMEM);
  EXPECT_EQ(CounterSet::current().snapshot().since(before).get("mm.overcommit_refused"), 1U);
  // Read-only, or NORESERVE: the driver's own refusal of MAP_PRIVATE.
  EXPECT_EQ(mm->mmap(VirtAddr(0), 2ULL << 30, prot::kRead, map::kPrivate, bar, 0).error(),
            Errno::kEINVAL);
  EXPECT_EQ(mm->mmap(VirtAddr(0), 2ULL << 30, prot::kRead | prot::kWrite,
                     map::kPrivate | map::kNoReserve, bar, 0)
                .error(),
            Errno::kEINVAL);
  EXPECT_EQ(commit.committedPages(), 0U);  // every refusal returned its charge
  mm->setVmCommit(nullptr);                // `commit` goes before the mm
}

// MAP_SHARED_VALIDATE accepts LEGACY_MAP_MASK and what the file supports:
// the old flags that do nothing here pass, MAP_FIXED_NOREPLACE (newer than
// the mask) does not, though MAP_SHARED with it works.
TEST_F(MmCallsTest, MMAP_11_SharedValidateAcceptsTheLegacyMask) {
  for (int legacy : {map::kStack, map::kNonBlock, map::kDenyWrite, map::kExecutable}) {
    SCOPED_TRACE(legacy);
    EXPECT_TRUE(mm->mmap(VirtAddr(0), 4096, prot::kRead, map::kSharedValidate | legacy, bar, 0));
  }
  const uint64_t free = 0x7f00'0000'0000;
  EXPECT_EQ(mm->mmap(VirtAddr(free), 4096, prot::kRead, map::kSharedValidate | map::kFixedNoReplace,
                     bar, 0)
                .error(),
            Errno::kEOPNOTSUPP);
  EXPECT_EQ(
      *mm->mmap(VirtAddr(free), 4096, prot::kRead, map::kShared | map::kFixedNoReplace, bar, 0),
      VirtAddr(free));
  EXPECT_EQ(mm->mmap(VirtAddr(free), 4096, prot::kRead, map::kSharedValidate | map::kFixedNoReplace,
                     bar, 0)
                .error(),
            Errno::kEEXIST)
      << "the range is checked first";
}

// __get_unmapped_area() checks a MAP_FIXED address against TASK_SIZE
// (-ENOMEM) before its alignment (-EINVAL).
TEST_F(MmCallsTest, MMAP_11_FixedAddressPastTaskSizeIsEnomemBeforeMisalignment) {
  const uint64_t past = kTaskSize - 4096 + 0x10;
  EXPECT_EQ(
      mm->mmap(VirtAddr(past), 64 << 10, prot::kRead, map::kShared | map::kFixed, bar, 0).error(),
      Errno::kENOMEM);
  EXPECT_EQ(
      mm->mmap(VirtAddr(0x7f00'0000'0010), 4096, prot::kRead, map::kShared | map::kFixed, bar, 0)
          .error(),
      Errno::kEINVAL);
}

TEST_F(MmCallsTest, MMAP_11_FlagsThatDoNothingAndFlagsThatFail) {
  EXPECT_EQ(mm->mmap(VirtAddr(0), 4096, prot::kRead, map::kShared | map::kHugetlb, bar, 0).error(),
            Errno::kEINVAL);
  EXPECT_EQ(
      mm->mmap(VirtAddr(0), 4096, prot::kRead, map::kSharedValidate | map::kSync, bar, 0).error(),
      Errno::kEOPNOTSUPP);
  for (int extra : {map::kLocked, map::kPopulate}) {
    auto va = mm->mmap(VirtAddr(0), 64 << 10, prot::kRead, map::kShared | extra, bar, 0);
    ASSERT_TRUE(va);
    EXPECT_EQ(leaves(*va, 64 << 10).total(), 0U);
  }
  for (int p : {prot::kNone, prot::kExec, prot::kWrite}) {
    auto va = mm->mmap(VirtAddr(0), 64 << 10, p, map::kShared, bar, 0);
    ASSERT_TRUE(va);
    EXPECT_EQ(leaves(*va, 64 << 10).total(), 0U);
  }
}

TEST_F(MmCallsTest, SPLIT_01_MunmapTheMiddleSplitsAndAdvancesPgoff) {
  startProfile("linux-6.10", false);
  auto va = mapBar(64 << 10, 0x4000);
  ASSERT_TRUE(va);
  for (uint64_t off = 0; off < (64 << 10); off += kPageSize) ASSERT_TRUE(touch(*va + off).none());
  const size_t count = mm->mapCount();
  ASSERT_TRUE(mm->munmap(*va + (16 << 10), 16 << 10));
  auto vmas = mm->vmaSnapshot();
  ASSERT_EQ(vmas.size(), 2U);
  EXPECT_EQ(vmas[0].pgoff, PgOff(4));
  EXPECT_EQ(vmas[1].start, *va + (32 << 10));
  EXPECT_EQ(vmas[1].pgoff, PgOff(4 + 8));
  EXPECT_EQ(mm->mapCount(), count + 1);
  EXPECT_EQ(leaves(*va, 64 << 10).pte, 12U);
  EXPECT_FALSE(translate(*va + (16 << 10)).present);
  // PFN-01: the upper piece still maps the right frames.
  EXPECT_EQ(translate(*va + (32 << 10)).pfn, Pfn::fromPhys(kBarBase) + 4 + 8);
}

TEST_F(MmCallsTest, SPLIT_02_MunmapInsideAPmdLeafClearsIt) {
  auto va = mapBar(4ULL << 20, 0, VirtAddr(0x7f0000200000));
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  ASSERT_EQ(translate(*va).level, PtLevel::kPmd);
  const CounterSnapshot before = CounterSet::current().snapshot();
  ASSERT_TRUE(mm->munmap(*va + (1 << 20), kPageSize));
  EXPECT_EQ(CounterSet::current().snapshot().since(before).get("mm.thp_split_pmd"), 1U);
  EXPECT_FALSE(translate(*va).present);
  ASSERT_TRUE(touch(*va).none());
  EXPECT_EQ(translate(*va).level, PtLevel::kPte);
}

TEST_F(MmCallsTest, SPLIT_04_MunmapArgumentRules) {
  EXPECT_EQ(mm->munmap(VirtAddr(0x7f0000000100), 4096).error(), Errno::kEINVAL);
  EXPECT_EQ(mm->munmap(VirtAddr(0x7f0000000000), 0).error(), Errno::kEINVAL);
  EXPECT_TRUE(mm->munmap(VirtAddr(0x7f0000000000), 1 << 20));  // nothing mapped: 0
}

TEST_F(MmCallsTest, SPLIT_05_FileStaysReferencedUntilTheLastMappingGoes) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  std::weak_ptr<FakeBarFile> weak = bar;
  bar.reset();  // close(fd)
  EXPECT_FALSE(weak.expired());
  ASSERT_TRUE(mm->munmap(*va, 64 << 10));
  EXPECT_TRUE(weak.expired());
}

// munmap_split_style in both positions: which piece is the new structure.
TEST_F(MmCallsTest, SPLIT_06_V61MunmapKeepsTheOriginalBelow) {
  startProfile("linux-6.1", false);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  const void* original = mm->vmaSnapshot()[0].identity;
  ASSERT_TRUE(mm->munmap(*va + (16 << 10), 16 << 10));
  auto vmas = mm->vmaSnapshot();
  ASSERT_EQ(vmas.size(), 2U);
  EXPECT_EQ(vmas[0].identity, original);
  EXPECT_NE(vmas[1].identity, original);
  EXPECT_EQ(bar->opens(), 2);  // the upper piece, then the removed middle
}

TEST_F(MmCallsTest, SPLIT_03_V65MunmapMakesTheKeptPiecesNew) {
  startProfile("linux-6.10", false);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  const void* original = mm->vmaSnapshot()[0].identity;
  ASSERT_TRUE(mm->munmap(*va + (16 << 10), 16 << 10));
  auto vmas = mm->vmaSnapshot();
  ASSERT_EQ(vmas.size(), 2U);
  EXPECT_NE(vmas[0].identity, original);
  EXPECT_NE(vmas[1].identity, original);
  EXPECT_EQ(bar->closes(), 1);  // the original, removed
}

TEST_F(MmCallsTest, MREMAP_01_GrowAndDontunmapAreRefusedShrinkWorks) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  for (uint64_t off = 0; off < (64 << 10); off += kPageSize) ASSERT_TRUE(touch(*va + off).none());
  EXPECT_EQ(mm->mremap(*va, 64 << 10, 128 << 10, 0, VirtAddr(0)).error(), Errno::kEFAULT);
  EXPECT_EQ(mm->mremap(*va, 64 << 10, 128 << 10, mremap::kMayMove, VirtAddr(0)).error(),
            Errno::kEFAULT);
  EXPECT_EQ(mm->mremap(*va, 64 << 10, 64 << 10, mremap::kMayMove | mremap::kDontUnmap, VirtAddr(0))
                .error(),
            Errno::kEINVAL);
  auto r = mm->mremap(*va, 64 << 10, 32 << 10, 0, VirtAddr(0));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, *va);
  EXPECT_EQ(leaves(*va, 64 << 10).total(), 8U);
}

TEST_F(MmCallsTest, MREMAP_02_MoveCarriesEntriesAndKeepsPgoff) {
  auto va = mapBar(2ULL << 30, 0, kFixedVa);
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  ASSERT_TRUE(touch(*va + kPudSize + kPageSize).none());
  const VirtAddr to(0x7e0000000000);
  auto r = mm->mremap(*va, 2ULL << 30, 2ULL << 30, mremap::kMayMove | mremap::kFixed, to);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, to);
  EXPECT_FALSE(translate(*va).present);
  EXPECT_EQ(translate(to).level, PtLevel::kPud);
  EXPECT_EQ(translate(to).pfn, Pfn::fromPhys(kBarBase));
  EXPECT_EQ(mm->vmaSnapshot()[0].pgoff, PgOff(0));
  // A later zap finds the new location through i_mmap.
  EXPECT_GT(bar->zap(), 0U);
  EXPECT_FALSE(translate(to).present);
}

TEST_F(MmCallsTest, MPROT_01_ReadOnlyThenBackToWriteInPlace) {
  startProfile("linux-6.10", false);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va, FaultAccess::kWrite).none());
  ASSERT_TRUE(mm->mprotect(*va, 64 << 10, prot::kRead));
  EXPECT_TRUE(translate(*va).present);
  EXPECT_FALSE(pte::isWritable(translate(*va).entry));
  EXPECT_EQ(touch(*va, FaultAccess::kWrite).signo, SigInfo::kSigsegv);
  ASSERT_TRUE(mm->mprotect(*va, 64 << 10, prot::kRead | prot::kWrite));
  const auto tr = translate(*va);
  EXPECT_TRUE(pte::isWritable(tr.entry));
  EXPECT_NE(tr.entry & pte::kPcd, 0U);  // still uncached
  const uint64_t faults = minFlt();
  EXPECT_TRUE(touch(*va, FaultAccess::kWrite).none());
  EXPECT_EQ(minFlt(), faults);
}

// PROT_NONE keeps the entry but drops _PAGE_USER: a read faults, and the
// fault is an access error.
TEST_F(MmCallsTest, MPROT_01_ProtNoneEntriesFaultOnRead) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  ASSERT_TRUE(mm->mprotect(*va, 64 << 10, prot::kNone));
  EXPECT_TRUE(translate(*va).present);
  const SigInfo sig = touch(*va);
  EXPECT_EQ(sig.signo, SigInfo::kSigsegv);
  EXPECT_EQ(sig.code, SigInfo::kSegvAccerr);
}

TEST_F(MmCallsTest, MPROT_02_MprotectInsideAPmdLeafClearsItAndSplitsInThree) {
  auto va = mapBar(4ULL << 20, 0, VirtAddr(0x7f0000200000));
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  const CounterSnapshot before = CounterSet::current().snapshot();
  ASSERT_TRUE(mm->mprotect(*va + (1 << 20), kPageSize, prot::kRead));
  EXPECT_EQ(CounterSet::current().snapshot().since(before).get("mm.thp_split_pmd"), 1U);
  EXPECT_EQ(mm->vmaSnapshot().size(), 3U);
  EXPECT_FALSE(translate(*va).present);
}

// do_mprotect_pkey(): an empty range succeeds before the bits are looked
// at; PROT_SEM is a bit x86 accepts.
TEST_F(MmCallsTest, MPROT_01_EmptyRangeSucceedsWhateverTheBits) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  EXPECT_TRUE(mm->mprotect(*va, 0, 0x40));
  EXPECT_EQ(mm->mprotect(*va, 4096, 0x40).error(), Errno::kEINVAL);
  EXPECT_TRUE(mm->mprotect(*va, 4096, prot::kRead | prot::kSem));
}

// x86 access_error(): a read faults only where the VMA allows no access
// at all; a write-only mapping reads (docs/spec-notes.md), a PROT_NONE one
// does not.
TEST_F(MmCallsTest, FAULT_01_AWriteOnlyMappingReadsOnX86) {
  auto va = mapBar(64 << 10, 0, VirtAddr(0), prot::kWrite);
  ASSERT_TRUE(va);
  EXPECT_TRUE(touch(*va).none());
  auto none = mapBar(64 << 10, 0, VirtAddr(0), prot::kNone);
  ASSERT_TRUE(none);
  EXPECT_EQ(touch(*none).signo, SigInfo::kSigsegv);
}

TEST_F(MmCallsTest, MPROT_03_AddingWriteOnAReadOnlyFileIsEacces) {
  bar->setWritable(false);
  bar->setRequireShared(false);
  auto va = mapBar(64 << 10, 0, VirtAddr(0), prot::kRead);
  ASSERT_TRUE(va);
  EXPECT_EQ(mm->mprotect(*va, 64 << 10, prot::kRead | prot::kWrite).error(), Errno::kEACCES);
}

TEST_F(MmCallsTest, MPROT_04_MprotectTheMiddleMakesNewOuterPieces) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  const void* original = mm->vmaSnapshot()[0].identity;
  ASSERT_TRUE(mm->mprotect(*va + (16 << 10), 16 << 10, prot::kRead));
  auto vmas = mm->vmaSnapshot();
  ASSERT_EQ(vmas.size(), 3U);
  EXPECT_NE(vmas[0].identity, original);
  EXPECT_EQ(vmas[1].identity, original);
  EXPECT_NE(vmas[2].identity, original);
}

// mprotect_fixup(): bits that do not change split nothing; the walk goes
// VMA by VMA, so a hole stops it after the VMAs before it changed.
TEST_F(MmCallsTest, MPROT_04_UnchangedBitsSplitNothingAndAHoleStopsTheWalk) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  ASSERT_TRUE(mm->mprotect(*va + (16 << 10), 16 << 10, prot::kRead | prot::kWrite));
  EXPECT_EQ(mm->vmaSnapshot().size(), 1U);
  auto after = mapBar(16 << 10, 0, *va + (80 << 10));  // a 16 KiB hole between
  ASSERT_TRUE(after);
  EXPECT_EQ(mm->mprotect(*va, 96 << 10, prot::kRead).error(), Errno::kENOMEM);
  const auto vmas = mm->vmaSnapshot();
  ASSERT_EQ(vmas.size(), 2U);
  EXPECT_EQ(vmas[0].flags & vm::kWrite, 0U) << "changed before the hole";
  EXPECT_NE(vmas[1].flags & vm::kWrite, 0U) << "after it, untouched";
}

// PROT_GROWSDOWN/PROT_GROWSUP stretch the range to the VMA's edge, which
// must grow that way: no VMA of the model does (x86 has no VM_GROWSUP).
TEST_F(MmCallsTest, MPROT_01_GrowsDownAndUpWantAGrowingVma) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  const int both = prot::kGrowsDown | prot::kGrowsUp;
  EXPECT_EQ(mm->mprotect(*va + 1, 0, prot::kRead | both).error(), Errno::kEINVAL) << "first";
  EXPECT_TRUE(mm->mprotect(*va, 0, prot::kRead | prot::kGrowsDown)) << "len 0";
  for (int g : {prot::kGrowsDown, prot::kGrowsUp}) {
    SCOPED_TRACE(g);
    EXPECT_EQ(mm->mprotect(*va + (16 << 10), 4096, prot::kRead | g).error(), Errno::kEINVAL);
    EXPECT_EQ(mm->mprotect(VirtAddr(0x10000), 4096, prot::kRead | g).error(), Errno::kENOMEM);
  }
  EXPECT_EQ(mm->vmaSnapshot().size(), 1U);
}

TEST_F(MmCallsTest, MADV_01_PfnmapAdviceAnswers) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  for (uint64_t off = 0; off < (64 << 10); off += kPageSize) ASSERT_TRUE(touch(*va + off).none());
  for (int a : {madv::kDontNeed, madv::kFree, madv::kCold, madv::kPopulateRead})
    EXPECT_EQ(mm->madvise(*va, 64 << 10, a).error(), Errno::kEINVAL) << a;
  EXPECT_EQ(mm->madvise(*va, 64 << 10, madv::kRemove).error(), Errno::kENODEV);
  for (int a : {madv::kWillNeed, madv::kHugepage, madv::kNoHugepage})
    EXPECT_TRUE(mm->madvise(*va, 64 << 10, a)) << a;
  const uint64_t faults = minFlt();
  for (uint64_t off = 0; off < (64 << 10); off += kPageSize) ASSERT_TRUE(touch(*va + off).none());
  EXPECT_EQ(minFlt(), faults);
}

// madvise_need_mmap_write(): advice that changes no VMA takes mmap_lock
// for read, so a fault may run beside it (MADV_DONTNEED zaps as a fault
// fills); advice that changes flags takes it for write. The mode is the
// same whether the advice is refused or not.
TEST_F(MmCallsTest, MADV_01_AdviceThatChangesNoVmaTakesTheMmapLockForRead) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  trace::Tracer& tracer = trace::Tracer::current();
  // Whether each mmap_lock acquisition of the call was for write.
  const auto writes = [&](int advice) {
    tracer.start(64, "madvise", 1);
    (void)mm->madvise(*va, 64 << 10, advice);
    const trace::TraceLog log = tracer.stop();
    std::vector<bool> out;
    for (const trace::TraceEvent& e : log.events)
      if (e.kind == trace::EventKind::kLockAcquire && e.name == kMmapLockClass.name())
        out.push_back((e.flags & trace::eventflag::kWrite) != 0);
    return out;
  };
  for (int a :
       {madv::kWillNeed, madv::kDontNeed, madv::kDontNeedLocked, madv::kFree, madv::kCold,
        madv::kPageout, madv::kPopulateRead, madv::kPopulateWrite, madv::kRemove, madv::kCollapse})
    EXPECT_EQ(writes(a), std::vector<bool>{false}) << a;
  for (int a : {madv::kHugepage, madv::kNoHugepage, madv::kDontFork, madv::kRandom,
                madv::kWipeOnFork, madv::kDontDump})
    EXPECT_EQ(writes(a), std::vector<bool>{true}) << a;
}

// From ≈6.17 (linux-6.19) MADV_DONTNEED and MADV_FREE of a range within one
// VMA take only that VMA's read lock (try_vma_read_lock()); a range that
// leaves the VMA, and every other advice, still take mmap_lock.
TEST_F(MmCallsTest, MADV_01_DontneedWithinOneVmaTakesOnlyItsLockFrom617) {
  for (const char* name : {"linux-6.15", "linux-6.19"}) {
    SCOPED_TRACE(name);
    startProfile(name);
    const bool vmaLock = std::string_view(name) == "linux-6.19";
    auto va = mm->mmap(VirtAddr(0), 64 << 10, prot::kRead | prot::kWrite,
                       map::kPrivate | map::kAnonymous, nullptr, 0);
    ASSERT_TRUE(va);
    trace::Tracer& tracer = trace::Tracer::current();
    // The classes of the locks the call acquired, in order.
    const auto locks = [&](uint64_t len, int advice) {
      tracer.start(64, "madvise", 1);
      EXPECT_TRUE(mm->madvise(*va, len, advice));
      const trace::TraceLog log = tracer.stop();
      std::vector<std::string_view> out;
      for (const trace::TraceEvent& e : log.events)
        if (e.kind == trace::EventKind::kLockAcquire) out.push_back(e.name);
      return out;
    };
    const std::vector<std::string_view> mmapRead{kMmapLockClass.name()};
    for (int a : {madv::kDontNeed, madv::kFree})
      EXPECT_EQ(locks(64 << 10, a),
                vmaLock ? std::vector<std::string_view>{kVmaLockClass.name()} : mmapRead)
          << a;
    EXPECT_EQ(locks(64 << 10, madv::kWillNeed), mmapRead);
    EXPECT_EQ(mm->madvise(*va, 128 << 10, madv::kDontNeed).error(), Errno::kENOMEM)
        << "past the VMA: mmap_lock's walk finds the hole";
  }
}

// madvise_update_vma(): advice that leaves a VMA's flags as they are splits
// nothing; advice that changes them splits off exactly the range.
TEST_F(MmCallsTest, MADV_01_AdviceThatChangesNoFlagSplitsNothing) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  const VirtAddr mid = *va + (16 << 10);
  for (int a : {madv::kDontDump, madv::kNormal, madv::kMergeable, madv::kUnmergeable,
                madv::kKeepOnFork, madv::kWillNeed}) {
    ASSERT_TRUE(mm->madvise(mid, 16 << 10, a)) << a;
    EXPECT_EQ(mm->vmaSnapshot().size(), 1U) << a;
  }
  ASSERT_TRUE(mm->madvise(mid, 16 << 10, madv::kSequential));
  auto vmas = mm->vmaSnapshot();
  ASSERT_EQ(vmas.size(), 3U);
  EXPECT_EQ(vmas[1].start, mid);
  EXPECT_EQ(vmas[1].flags & (vm::kSeqRead | vm::kRandRead), vm::kSeqRead);
  EXPECT_EQ(vmas[0].flags & vm::kSeqRead, 0U);
  ASSERT_TRUE(mm->madvise(mid, 16 << 10, madv::kRandom));
  vmas = mm->vmaSnapshot();
  ASSERT_EQ(vmas.size(), 3U);
  EXPECT_EQ(vmas[1].flags & (vm::kSeqRead | vm::kRandRead), vm::kRandRead);
}

// do_madvise()'s checks come before any VMA is looked at: the advice, the
// start's alignment, a length that rounds up to 0 or wraps.
TEST_F(MmCallsTest, MADV_01_DoMadviseChecksTheCallFirst) {
  EXPECT_EQ(mm->madvise(VirtAddr(0x10000), 0, 99).error(), Errno::kEINVAL);
  EXPECT_TRUE(mm->madvise(VirtAddr(0x10000), 0, madv::kNormal));
  EXPECT_EQ(mm->madvise(VirtAddr(0x10001), 0, madv::kNormal).error(), Errno::kEINVAL);
  EXPECT_EQ(mm->madvise(VirtAddr(0x10000), ~uint64_t{0}, madv::kNormal).error(), Errno::kEINVAL);
  EXPECT_EQ(mm->madvise(VirtAddr(0x7f0000000000), ~uint64_t{0} - (1 << 20), madv::kNormal).error(),
            Errno::kEINVAL);
  EXPECT_EQ(mm->madvise(VirtAddr(0x10000), 4096, madv::kNormal).error(), Errno::kENOMEM);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  for (int a : {madv::kCollapse, madv::kDontNeedLocked, madv::kPageout})
    EXPECT_EQ(mm->madvise(*va, 64 << 10, a).error(), Errno::kEINVAL) << a;
}

// madvise_walk_vmas() advises VMA by VMA: a refusal keeps what the VMAs
// before it were given.
TEST_F(MmCallsTest, MADV_02_AWalkKeepsTheAdviceBeforeARefusal) {
  auto anon = mm->mmap(VirtAddr(0), 64 << 10, prot::kRead | prot::kWrite,
                       map::kPrivate | map::kAnonymous, nullptr, 0);
  ASSERT_TRUE(anon);
  ASSERT_TRUE(mapBar(64 << 10, 0, *anon + (64 << 10)));
  EXPECT_EQ(mm->madvise(*anon, 128 << 10, madv::kWipeOnFork).error(), Errno::kEINVAL);
  auto vmas = mm->vmaSnapshot();
  ASSERT_EQ(vmas.size(), 2U);
  EXPECT_NE(vmas[0].flags & vm::kWipeOnFork, 0U);
  EXPECT_TRUE(mm->madvise(*anon, 128 << 10, madv::kMergeable));
  EXPECT_NE(mm->vmaSnapshot()[0].flags & vm::kMergeable, 0U) << "anonymous: KSM may merge it";
  EXPECT_EQ(mm->vmaSnapshot()[1].flags & vm::kMergeable, 0U) << "a BAR: vma_ksm_compatible()";
}

// madvise_dontneed_free_valid_vma(): locked memory is only for
// MADV_DONTNEED_LOCKED; MADV_FREE wants private anonymous memory.
TEST_F(MmCallsTest, MADV_02_LockedAndSharedAnonymousRefusals) {
  auto anon = mm->mmap(VirtAddr(0), 64 << 10, prot::kRead | prot::kWrite,
                       map::kPrivate | map::kAnonymous, nullptr, 0);
  ASSERT_TRUE(anon);
  ASSERT_TRUE(mm->mlock(*anon, 64 << 10));
  for (int a : {madv::kDontNeed, madv::kFree, madv::kCold, madv::kPageout})
    EXPECT_EQ(mm->madvise(*anon, 64 << 10, a).error(), Errno::kEINVAL) << a;
  EXPECT_TRUE(mm->madvise(*anon, 64 << 10, madv::kDontNeedLocked));
  auto shared = mm->mmap(VirtAddr(0), 64 << 10, prot::kRead | prot::kWrite,
                         map::kShared | map::kAnonymous, nullptr, 0);
  ASSERT_TRUE(shared);
  EXPECT_EQ(mm->madvise(*shared, 64 << 10, madv::kFree).error(), Errno::kEINVAL);
  EXPECT_TRUE(mm->madvise(*shared, 64 << 10, madv::kDontNeed));
}

TEST_F(MmCallsTest, MADV_02_DontforkHidesTheMappingFromTheChild) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  EXPECT_EQ(mm->madvise(*va, 64 << 10, madv::kWipeOnFork).error(), Errno::kEINVAL);
  EXPECT_EQ(mm->madvise(*va, 64 << 10, madv::kDoFork).error(), Errno::kEINVAL);
  ASSERT_TRUE(mm->madvise(*va, 64 << 10, madv::kDontFork));
  auto child = mm->fork();
  ASSERT_TRUE(child);
  Task ct;
  ct.mm = child->get();
  const SigInfo sig = touchAs(ct, *va, FaultAccess::kRead);
  EXPECT_EQ(sig.signo, SigInfo::kSigsegv);
  EXPECT_EQ(sig.code, SigInfo::kSegvMaperr);
}

TEST_F(MmCallsTest, MADV_03_MlockAndMincore) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  ASSERT_TRUE(mm->mlock(*va, 64 << 10));
  EXPECT_EQ(leaves(*va, 64 << 10).total(), 0U);
  EXPECT_EQ(mm->vmaSnapshot()[0].flags & vm::kLocked, 0U);
  ASSERT_TRUE(touch(*va).none());
  auto vec = mm->mincore(*va, 64 << 10);
  ASSERT_TRUE(vec);
  EXPECT_EQ(vec->size(), 16U);
  for (uint8_t b : *vec) EXPECT_EQ(b, 0);
}

// mlock_fixup(): the range is split off and locked, and only newly
// locked pages count in locked_vm; munmap gives them back, and a fork's
// child inherits no lock.
TEST_F(MmCallsTest, MADV_03_MlockSplitsAndCountsLockedVm) {
  auto anon = mm->mmap(VirtAddr(0), 64 << 10, prot::kRead | prot::kWrite,
                       map::kPrivate | map::kAnonymous, nullptr, 0);
  ASSERT_TRUE(anon);
  ASSERT_TRUE(mm->mlock(*anon + (16 << 10), 16 << 10));
  auto vmas = mm->vmaSnapshot();
  ASSERT_EQ(vmas.size(), 3U);
  EXPECT_EQ(vmas[0].flags & vm::kLocked, 0U);
  EXPECT_NE(vmas[1].flags & vm::kLocked, 0U);
  EXPECT_EQ(vmas[2].flags & vm::kLocked, 0U);
  EXPECT_EQ(mm->lockedVm(), 4U);
  ASSERT_TRUE(mm->mlock(*anon, 64 << 10));
  EXPECT_EQ(mm->lockedVm(), 16U) << "the 4 locked pages are not counted again";
  auto child = mm->fork();
  ASSERT_TRUE(child);
  EXPECT_EQ((*child)->lockedVm(), 0U);
  for (const VmaSnapshot& v : (*child)->vmaSnapshot()) EXPECT_EQ(v.flags & vm::kLocked, 0U);
  ASSERT_TRUE(mm->munmap(*anon + (16 << 10), 32 << 10));
  EXPECT_EQ(mm->lockedVm(), 8U);
}

// MAP_LOCKED sets VM_LOCKED and counts the mapping in locked_vm, unless the
// driver made it VM_SPECIAL; RLIMIT_MEMLOCK bounds mlock(), MAP_LOCKED and
// a locked mapping's growth alike.
TEST_F(MmCallsTest, MADV_03_MapLockedAndTheLimitAcrossCalls) {
  const MemlockRights limit{.limitBytes = 64 << 10};
  auto locked = mm->mmap(VirtAddr(0), 32 << 10, prot::kRead | prot::kWrite,
                         map::kPrivate | map::kAnonymous | map::kLocked, nullptr, 0, limit);
  ASSERT_TRUE(locked);
  EXPECT_NE(mm->vmaSnapshot()[0].flags & vm::kLocked, 0U);
  EXPECT_EQ(mm->lockedVm(), 8U);
  EXPECT_EQ(mm->mmap(VirtAddr(0), 64 << 10, prot::kRead, map::kShared | map::kLocked, bar, 0, limit)
                .error(),
            Errno::kEAGAIN)
      << "checked before the driver makes it VM_SPECIAL";
  auto va =
      mm->mmap(VirtAddr(0), 32 << 10, prot::kRead, map::kShared | map::kLocked, bar, 0, limit);
  ASSERT_TRUE(va);
  EXPECT_EQ(mm->lockedVm(), 8U) << "a BAR mapping is never locked";
  auto anon = mm->mmap(VirtAddr(0), 64 << 10, prot::kRead | prot::kWrite,
                       map::kPrivate | map::kAnonymous, nullptr, 0, limit);
  ASSERT_TRUE(anon);
  EXPECT_EQ(mm->mlock(*anon, 48 << 10, limit).error(), Errno::kENOMEM);
  ASSERT_TRUE(mm->mlock(*anon, 32 << 10, limit));
  EXPECT_EQ(mm->lockedVm(), 16U);
  EXPECT_EQ(mm->mmap(VirtAddr(0), 4096, prot::kRead, map::kPrivate | map::kAnonymous | map::kLocked,
                     nullptr, 0, limit)
                .error(),
            Errno::kEAGAIN);
  EXPECT_EQ(mm->mremap(*locked, 32 << 10, 36 << 10, mremap::kMayMove, VirtAddr(0), limit).error(),
            Errno::kEAGAIN);
  auto moved = mm->mremap(*locked, 32 << 10, 32 << 10, mremap::kMayMove | mremap::kFixed,
                          VirtAddr(0x7e00'0000'0000), limit);
  ASSERT_TRUE(moved);
  EXPECT_EQ(mm->lockedVm(), 16U) << "the move took its count along";
  ASSERT_TRUE(mm->munmap(*moved, 32 << 10));
  EXPECT_EQ(mm->lockedVm(), 8U);
}

// file_thp_placement off (linux-6.9, linux-6.15): page alignment only.
TEST_F(MmCallsTest, ALIGN_01_PlacementOffGivesNoTwoMegGuarantee) {
  startProfile("linux-6.15");
  ASSERT_TRUE(mm->mmap(VirtAddr(0), 12 << 10, prot::kRead, map::kShared, bar, 0));
  auto va = mapBar(2ULL << 30, 0);
  ASSERT_TRUE(va);
  EXPECT_TRUE(va->isAligned(kPageSize));
  EXPECT_FALSE(va->isAligned(kPmdSize));
}

// file_thp_placement pmd-len (6.12.y): congruent to the offset mod 2 MiB.
TEST_F(MmCallsTest, ALIGN_02_ThpPlacementGivesTwoMegCongruence) {
  startProfile("linux-6.12");
  ASSERT_TRUE(mm->mmap(VirtAddr(0), 12 << 10, prot::kRead, map::kShared, bar, 0));
  auto va = mapBar(2ULL << 30, 0);
  ASSERT_TRUE(va);
  EXPECT_TRUE(va->isAligned(kPmdSize));
  auto odd = mapBar(kPmdSize + kPageSize, 0);  // len not a multiple of 2 MiB: no alignment
  ASSERT_TRUE(odd);
  EXPECT_FALSE(odd->isAligned(kPmdSize));
}

// __thp_get_unmapped_area() on a top-down mm: when the hole found for
// len + 2 MiB already starts congruent, the mapping takes the top of it
// (ret + size), so 2 MiB-aligned maps pack one under the other.
TEST_F(MmCallsTest, ALIGN_02_ACongruentHoleIsFilledFromItsTop) {
  for (const char* profile : {"linux-6.10", "linux-6.12"}) {
    SCOPED_TRACE(profile);
    startProfile(profile);
    auto upper = mapBar(kPmdSize, 0);
    ASSERT_TRUE(upper);
    ASSERT_TRUE(upper->isAligned(kPmdSize));
    auto lower = mapBar(4 * kPmdSize, 0);
    ASSERT_TRUE(lower);
    EXPECT_EQ(*lower + 4 * kPmdSize, *upper) << "no 2 MiB gap between them";
  }
}

TEST_F(MmCallsTest, ALIGN_02_AnyLenPlacementAlignsOddLengthsToo) {
  startProfile("linux-6.10");
  ASSERT_TRUE(mm->mmap(VirtAddr(0), 12 << 10, prot::kRead, map::kShared, bar, 0));
  auto odd = mapBar(kPmdSize + kPageSize, 0);
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->isAligned(kPmdSize));
}

// thp_placement_needs_null_hint in both positions, with an occupied hint.
TEST_F(MmCallsTest, ALIGN_04_OccupiedHintAndTheNullHintRule) {
  startProfile("linux-6.12");  // needs a null hint
  auto blocker = mm->mmap(VirtAddr(0), 12 << 10, prot::kRead, map::kShared, bar, 0);
  ASSERT_TRUE(blocker);
  auto plain = mm->mmap(*blocker, 2ULL << 30, prot::kRead, map::kShared, bar, 0);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->isAligned(kPmdSize));
  startProfile("linux-6.10");  // a hint still goes through THP placement
  blocker = mm->mmap(VirtAddr(0), 12 << 10, prot::kRead, map::kShared, bar, 0);
  ASSERT_TRUE(blocker);
  auto thp = mm->mmap(*blocker, 2ULL << 30, prot::kRead, map::kShared, bar, 0);
  ASSERT_TRUE(thp);
  EXPECT_TRUE(thp->isAligned(kPmdSize));
}

TEST_F(MmCallsTest, FORK_01_ChildGetsTheSpecialPtesWithoutFaulting) {
  startProfile("linux-6.10", false);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  for (uint64_t off = 0; off < (64 << 10); off += kPageSize) ASSERT_TRUE(touch(*va + off).none());
  auto child = mm->fork();
  ASSERT_TRUE(child);
  for (uint64_t off = 0; off < (64 << 10); off += kPageSize) {
    const auto tr = (*child)->pageTable().translate(*va + off);
    ASSERT_TRUE(tr.present);
    EXPECT_EQ(tr.pfn, translate(*va + off).pfn);
  }
  // i_mmap: the child's VMA right after the parent's.
  std::vector<const Mm*> order;
  {
    ReadGuard g(bar->mapping()->iMmapRwsem());
    bar->mapping()->forEachVma(0, ~0ULL, [&](Vma& v) { order.push_back(&v.mm()); });
  }
  ASSERT_EQ(order.size(), 2U);
  EXPECT_EQ(order[0], mm.get());
  EXPECT_EQ(order[1], child->get());
}

TEST_F(MmCallsTest, FORK_03_HugeLeavesAreCopiedOldAndWritable) {
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000000000));
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  ASSERT_TRUE(mm->madvise(*va + kPudSize, kPudSize, madv::kNoHugepage));
  ASSERT_TRUE(mm->madvise(*va + kPudSize, kPudSize, madv::kHugepage));
  ASSERT_TRUE(touch(*va + kPudSize + kPageSize * 0).none());
  auto child = mm->fork();
  ASSERT_TRUE(child);
  const auto pud = (*child)->pageTable().translate(*va);
  ASSERT_TRUE(pud.present);
  EXPECT_EQ(pud.level, PtLevel::kPud);
  EXPECT_TRUE(pte::isWritable(pud.entry));
  EXPECT_EQ(pud.entry & pte::kAccessed, 0U);
  EXPECT_EQ((*child)->pageTable().translate(*va + kPudSize).level, translate(*va + kPudSize).level);
}

TEST_F(MmCallsTest, FORK_04_ZapAfterForkReachesParentAndChild) {
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  auto child = mm->fork();
  ASSERT_TRUE(child);
  bar->setEnabled(false);
  bar->zap();
  Task ct;
  ct.mm = child->get();
  EXPECT_EQ(touch(*va).signo, SigInfo::kSigbus);
  EXPECT_EQ(touchAs(ct, *va, FaultAccess::kRead).signo, SigInfo::kSigbus);
}

// fork_open_before_copy in both positions, with a driver whose ->open zaps
// (what G1 does): open-then-copy keeps the copied entries.
TEST_F(MmCallsTest, FORK_02_OpenBeforeCopyKeepsTheCopiedEntries) {
  startProfile("linux-6.9", false);
  bar->setZapOnOpen(true);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  auto child = mm->fork();
  ASSERT_TRUE(child);
  EXPECT_TRUE((*child)->pageTable().translate(*va).present);
}

TEST_F(MmCallsTest, FORK_05_CopyThenOpenLosesTheCopiedEntries) {
  auto profile = *KernelProfile::byName("linux-6.1");
  profile.mm.forkOpenBeforeCopy = false;
  mm = std::make_unique<Mm>(machine, profile.mm);
  task->mm = mm.get();
  bar = std::make_shared<FakeBarFile>(kBarBase, kBarSize, false);
  bar->setZapOnOpen(true);
  auto va = mapBar(64 << 10);
  ASSERT_TRUE(va);
  ASSERT_TRUE(touch(*va).none());
  auto child = mm->fork();
  ASSERT_TRUE(child);
  EXPECT_FALSE((*child)->pageTable().translate(*va).present);
  EXPECT_TRUE(translate(*va).present);
}

// vm_flags_write_assert in its three positions: remap_pfn_range under the
// mmap read lock (what G1's fault did).
class VmFlagsAssertTest : public MmTest {
 protected:
  size_t remapUnderReadLock(std::string_view profile, bool lockdepOn) {
    startProfile(profile, false);
    lockdep::setEnabled(lockdepOn);
    auto va = mapBar(64 << 10);
    EXPECT_TRUE(va);
    lockdep::clearReports();
    {
      ReadGuard g(mm->mmapLock());
      Vma* vma = mm->findVma(*va);
      EXPECT_TRUE(remapPfnRange(*vma, vma->start(), Pfn::fromPhys(kBarBase), vma->length(),
                                vma->pageProt()));
    }
    lockdep::setEnabled(true);
    EXPECT_EQ(leaves(*va, 64 << 10).pte, 16U);
    return lockdep::reportCount(lockdep::ReportKind::kAssertHeldWrite);
  }
};

TEST_F(VmFlagsAssertTest, FAULT_05_NoCheckBefore63) {
  EXPECT_EQ(remapUnderReadLock("linux-6.1", true), 0U);
}
TEST_F(VmFlagsAssertTest, FAULT_05_LockdepOnlyIn63To69) {
  EXPECT_EQ(remapUnderReadLock("linux-6.9", true), 1U);
  EXPECT_EQ(remapUnderReadLock("linux-6.9", false), 0U);
}
TEST_F(VmFlagsAssertTest, FAULT_05_AlwaysFrom610) {
  EXPECT_EQ(remapUnderReadLock("linux-6.10", true), 1U);
  EXPECT_EQ(remapUnderReadLock("linux-6.10", false), 1U);
}

// remap_pfn_range out of page-table memory midway: -ENOMEM, and what it had
// mapped is zapped again.
TEST_F(MmCallsTest, RemapPfnRangeFailingMidwayZapsWhatItMapped) {
  // 8 pages before a PMD boundary: the PTE tables take 8, 512, 512, ... entries.
  auto va = mapBar(6 << 20, 0, kFixedVa + kPmdSize - 8 * kPageSize);
  ASSERT_TRUE(va);
  int ptes = 0;
  mm->pageTable().setAllocFailure([&](PtLevel l) { return l == PtLevel::kPte && ++ptes == 3; });
  const CounterSnapshot before = CounterSet::current().snapshot();
  {
    WriteGuard g(mm->mmapLock());
    Vma* vma = mm->findVma(*va);
    const Status st =
        remapPfnRange(*vma, vma->start(), Pfn::fromPhys(kBarBase), vma->length(), vma->pageProt());
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error(), Errno::kENOMEM);
  }
  mm->pageTable().setAllocFailure(nullptr);
  const CounterSnapshot d = CounterSet::current().snapshot().since(before);
  EXPECT_EQ(d.get("mm.pfn_insert.pte"), 8U + 512U);
  EXPECT_EQ(d.get("mm.zap.calls"), 1U);
  EXPECT_EQ(d.get("mm.zap.pte"), 8U + 512U);
  EXPECT_EQ(leaves(*va, 6 << 20).total(), 0U);
  EXPECT_EQ(mm->pageTable().tablePages(PtLevel::kPte), 2U);  // kept, as a zap keeps them
}

TEST_F(MmCallsTest, ExitFreesEveryTableAndUnlinksEveryVma) {
  auto va = mapBar(2ULL << 30, 0, VirtAddr(0x7f0000001000));
  ASSERT_TRUE(va);
  for (uint64_t off = 0; off < (8ULL << 20); off += kPageSize) ASSERT_TRUE(touch(*va + off).none());
  EXPECT_GT(mm->pageTable().pgtablesBytes(), 0U);
  mm->exitMmap();
  EXPECT_EQ(mm->pageTable().pgtablesBytes(), 0U);
  EXPECT_EQ(mm->mapCount(), 0U);
  ReadGuard g(bar->mapping()->iMmapRwsem());
  EXPECT_EQ(bar->mapping()->vmaCount(), 0U);
}

}  // namespace
}  // namespace vfiomm::testing
