// `vma-list` (G1): every [G1] item of conformance.md — the whole-VMA fill and
// vma_list (FAULT-03/04), ->open zapping the structures mm calls new (fork,
// split, mprotect: FORK-05, SPLIT-03/06, MPROT-04), the zap's walk of the
// list (ZAP-05), its lock order (LOCK-03) and vm_pgoff as a pfn (MMAP-09,
// FS-03) — and its holes: a fork child opened before the copy (FORK-02) and
// an mremap destination (MREMAP-03) keep PTEs the list does not know, so
// after MEM=0 they still reach the BAR, which the model reports as
// invariant-1 (decode) violations. FAULT-05 is fault_huge_test.cc's and
// RESET-06 reset_test.cc's.
//
// Every hole has a twin in NoG1HoleTest: the same steps on address-space,
// fill-vma, huge-fault and prefault end in SIGBUS with no violation (and,
// for FAULT-05 and RESET-06, in no report and no -EBUSY).
//
// Which structure is "new" follows Linux (checked against torvalds/linux):
// v6.1's do_mas_align_munmap splits with __split_vma(start, 0) and
// (end, 1); the maple-tree rework ("mm/mmap: change do_vmi_align_munmap() for
// maple tree", ≈6.5) uses (start, 1) and (end, 0); mprotect_fixup uses
// (start, 1) and (end, 0) in both. That is mm-pfnmap.md §12 as written.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "base/byte_units.h"
#include "bound_context.h"
#include "line_up.h"
#include "mm/address_space.h"
#include "mm/fault.h"
#include "mm/mm.h"
#include "mm/task.h"
#include "mm/vma.h"
#include "sync/sched_hook.h"
#include "sync/thread_annotations.h"
#include "vfio/design/vma_list_tracking.h"
#include "vfio/vfio_pci_core_device.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

constexpr uint64_t kVaA = 0x6000'0000'0000;  // fixed addresses, far from mmap_base
constexpr uint64_t kVaB = 0x6100'0000'0000;
constexpr uint64_t k64K = 64 * kKiB;
constexpr uint64_t kBar0Pfn = 0xF0000;
constexpr uint32_t kAllOnes32 = 0xffff'ffff;

// Lock operations a test does by hand, outside the analysis' reach.
void mmapWriteLock(Mm& mm) NO_THREAD_SAFETY_ANALYSIS { mm.mmapWriteLock(); }
void mmapWriteUnlock(Mm& mm) NO_THREAD_SAFETY_ANALYSIS { mm.mmapWriteUnlock(); }
void mmapReadLock(Mm& mm) NO_THREAD_SAFETY_ANALYSIS { mm.mmapLock().downRead(); }
void mmapReadUnlock(Mm& mm) NO_THREAD_SAFETY_ANALYSIS { mm.mmapLock().upRead(); }
void lockMutex(Mutex& m) NO_THREAD_SAFETY_ANALYSIS { m.lock(); }
void unlockMutex(Mutex& m) NO_THREAD_SAFETY_ANALYSIS { m.unlock(); }

// lockdep switched off for a scope (no lock may be held across the switch).
class LockdepOff {
 public:
  LockdepOff() { lockdep::setEnabled(false); }
  ~LockdepOff() { lockdep::setEnabled(true); }
  LockdepOff(const LockdepOff&) = delete;
  LockdepOff& operator=(const LockdepOff&) = delete;
};

CounterSnapshot counters() { return CounterSet::current().snapshot(); }
uint64_t since(const CounterSnapshot& before, std::string_view name) {
  return counters().since(before).get(name);
}

KernelProfile namedProfile(std::string_view name) {
  auto p = KernelProfile::byName(name);
  EXPECT_TRUE(p.has_value()) << name;
  return p.value_or(KernelProfile{});
}

class G1Fixture : public VfioTest {
 protected:
  VmaListTracking& g1() { return static_cast<VmaListTracking&>(dev->pci().design().tracking()); }

  uint64_t mapAt(uint64_t offset, uint64_t len, uint64_t at) {
    const long va = map(offset, len, at);
    EXPECT_EQ(va, static_cast<long>(at));
    return at;
  }
  // Every 4 KiB page touched: the range is fully populated in every design.
  void populate(uint64_t va, uint64_t len, Process* p = nullptr) {
    for (uint64_t off = 0; off < len; off += kPageSize)
      EXPECT_TRUE(touch(va + off, p).sig.none()) << std::hex << va + off;
  }
  std::vector<VmaSnapshot> vmas(Process* p = nullptr) {
    return (p ? *p : *proc).mm().vmaSnapshot();
  }
  const void* identityAt(uint64_t va, Process* p = nullptr) {
    for (const VmaSnapshot& s : vmas(p))
      if (s.start.value() <= va && va < s.end.value()) return s.identity;
    ADD_FAILURE() << "no VMA at " << std::hex << va;
    return nullptr;
  }
  // Whether the VMA structure at `va` is on vma_list (isListed only compares
  // the structure's address).
  bool listed(uint64_t va, Process* p = nullptr) {
    const void* id = identityAt(va, p);
    return id != nullptr && g1().isListed(*static_cast<const Vma*>(id));
  }
  uint64_t violations() { return kernel->pciHost().decodeViolationCount(); }

  // The steps of FORK-01/02/04/05 up to MEM=0: the parent populates a 64 KiB
  // BAR0 mapping, forks, the child touches every page; MEM=0; the parent
  // touches once, the child three times.
  struct ForkRun {
    LeafCounts childLeavesAtFork;
    uint64_t childFaults = 0;
    size_t listLength = 0;     // G1, once the child touched every page
    bool childListed = false;  // G1
    SigInfo parentWhileOff;
    std::vector<AccessResult> childWhileOff;
    uint64_t violationsWhileOff = 0;
  };
  ForkRun forkThenDisableMemory() {
    ForkRun r;
    const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
    populate(va, k64K);
    auto child = proc->fork();
    EXPECT_NE(child, nullptr);
    if (child == nullptr) return r;
    r.childLeavesAtFork = leaves(va, k64K, child.get());
    const uint64_t flt = minFlt(child.get());
    populate(va, k64K, child.get());
    r.childFaults = minFlt(child.get()) - flt;
    if (isG1()) {
      r.listLength = g1().listLength();
      r.childListed = listed(va, child.get());
    }
    const uint64_t v0 = violations();
    setMem(false);
    r.parentWhileOff = touch(va).sig;
    for (uint64_t off : {uint64_t{0}, uint64_t{0x5000}, uint64_t{0xF000}})
      r.childWhileOff.push_back(touch(va + off, child.get()));
    r.violationsWhileOff = violations() - v0;
    return r;
  }

  // The steps of MREMAP-02/03: a populated 64 KiB BAR0 mapping moved (same
  // size, MAYMOVE|FIXED); touched; MEM=0 and two touches; MEM=1 and a touch.
  struct MremapRun {
    long moved = 0;
    LeafCounts source;
    LeafCounts dest;
    uint64_t faultsAfterMove = 0;
    size_t listLength = 0;  // G1, after the move
    std::vector<AccessResult> whileOff;
    uint64_t violationsWhileOff = 0;
    AccessResult afterOn;
    uint64_t faultsAfterOn = 0;
  };
  MremapRun moveThenDisableMemory() {
    MremapRun r;
    const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
    populate(va, k64K);
    r.moved = proc->mremap(va, k64K, k64K, mremap::kMayMove | mremap::kFixed, kVaB);
    r.source = leaves(va, k64K);
    r.dest = leaves(kVaB, k64K);
    uint64_t flt = minFlt();
    populate(kVaB, k64K);
    r.faultsAfterMove = minFlt() - flt;
    if (isG1()) r.listLength = g1().listLength();
    const uint64_t v0 = violations();
    setMem(false);
    for (uint64_t off : {uint64_t{0}, uint64_t{0x8000}}) r.whileOff.push_back(touch(kVaB + off));
    r.violationsWhileOff = violations() - v0;
    setMem(true);
    flt = minFlt();
    r.afterOn = touch(kVaB + 0x4000);
    r.faultsAfterOn = minFlt() - flt;
    return r;
  }

  // RESET-06's steps: a hot reset issued on another thread while the mapping
  // process holds its mmap lock for write. Returns the ioctl's result and
  // whether the ioctl waited for that lock (it is then released so that the
  // ioctl can finish).
  struct HotResetRun {
    long result = 0;
    bool waitedForMmapLock = false;
  };
  HotResetRun hotResetWhileMmapWriteLocked() {
    HotResetRun r;
    std::atomic<int> state{0};  // 1: the ioctl returned; 2: it waits for the mmap lock
    LineUp lineUp;
    lineUp.on(1, LineUp::Event::kWait, &proc->mm().mmapLock(), 1, [&] {
      int expected = 0;
      if (state.compare_exchange_strong(expected, 2)) state.notify_all();
    });
    uapi::HotResetArg args = uapi::hotResetArg({groupFd});
    InstalledHook installed(lineUp);
    mmapWriteLock(proc->mm());
    testing::BoundThread resetter(kernel->context(), [&] {
      LineUp::role = 1;
      r.result = proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, args.get());
      int expected = 0;
      if (state.compare_exchange_strong(expected, 1)) state.notify_all();
    });
    state.wait(0);
    r.waitedForMmapLock = state.load() == 2;
    mmapWriteUnlock(proc->mm());
    resetter.join();
    return r;
  }
};

// ---------------------------------------------------------------------------
// G1 itself

class VmaListTest : public G1Fixture {};

TEST_P(VmaListTest, MMAP_09_VmPgoffIsRewrittenToThePfn) {
  for (const char* profile : {"linux-6.1", "linux-6.9"}) {
    SCOPED_TRACE(profile);
    boot(DesignKind::kVmaList, profile);
    mapAt(kBar0Offset + 0x4000, 16 * kKiB, kVaA);
    mapAt(kBar2Offset + kMiB, 2 * kMiB, kVaB);
    const auto v = vmas();
    ASSERT_EQ(v.size(), 2U);
    EXPECT_EQ(v[0].pgoff, PgOff(0xF0004));
    EXPECT_EQ(v[1].pgoff, PgOff(0x400'0000 + (kMiB >> kPageShift)));
  }
}

TEST_P(VmaListTest, FAULT_03_OneTouchFillsTheWholeVmaAndListsIt) {
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  ASSERT_EQ(g1().listLength(), 0U);
  const CounterSnapshot before = counters();
  const uint64_t flt = minFlt();
  ASSERT_TRUE(touch(va + 0x3000).sig.none());
  EXPECT_EQ(leaves(va, k64K).pte, 16U);
  for (uint64_t off = 0; off < k64K; off += kPageSize)
    EXPECT_EQ(translate(va + off).pfn, Pfn(kBar0Pfn + (off >> kPageShift)));
  EXPECT_EQ(g1().listLength(), 1U);
  EXPECT_TRUE(listed(va));
  EXPECT_EQ(minFlt() - flt, 1U);
  EXPECT_EQ(since(before, "mm.fault.fault"), 1U);
  EXPECT_EQ(since(before, "vfio.vma_list.fills"), 1U);
  populate(va, k64K);
  EXPECT_EQ(minFlt() - flt, 1U) << "the rest of the VMA took faults";
}

// The fill's vm_flags_set() runs vma_start_write() under the mmap read
// lock: the VMA stays write-locked for per-VMA faults until the next
// mmap_write_unlock(), so the refault after a zap skips the per-VMA
// attempt (no second VMA_LOCK_RETRY) until an munmap elsewhere unlocks it.
TEST_P(VmaListTest, FAULT_03_TheFillWriteLocksTheVmaForPerVmaFaults) {
  boot(DesignKind::kVmaList, "linux-6.9");
  ASSERT_TRUE(kernel->profile().mm.perVmaLock);
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  const CounterSnapshot before = counters();
  ASSERT_TRUE(touch(va).sig.none());
  EXPECT_EQ(since(before, "vmstat.vma_lock_retry"), 1U);
  setMem(false);
  setMem(true);
  ASSERT_TRUE(touch(va).sig.none());
  EXPECT_EQ(since(before, "mm.fault.fault"), 2U);
  EXPECT_EQ(since(before, "vmstat.vma_lock_retry"), 1U) << "the refault went to the mmap lock";
  const uint64_t other = mapAt(kBar0Offset, k64K, kVaB);
  ASSERT_EQ(proc->munmap(other, k64K), 0);  // an mmap_write_unlock()
  setMem(false);
  setMem(true);
  ASSERT_TRUE(touch(va).sig.none());
  EXPECT_EQ(since(before, "vmstat.vma_lock_retry"), 2U);
}

// Both threads pass the "PTE is none" check and queue on vma_lock (which the
// test holds until both wait for it); the first in fills the VMA, the second
// finds it listed and returns NOPAGE without calling remap_pfn_range again
// (which would BUG on the present PTEs).
TEST_P(VmaListTest, FAULT_04_RacingFaultFindsTheVmaListed) {
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  Thread& a = *proc->addThread(1);
  Thread& b = *proc->addThread(2);
  std::latch bothWait(2);
  LineUp lineUp;
  lineUp.on(1, LineUp::Event::kWait, &g1().vmaLock(), 1, [&] { bothWait.count_down(); });
  lineUp.on(2, LineUp::Event::kWait, &g1().vmaLock(), 1, [&] { bothWait.count_down(); });
  const CounterSnapshot before = counters();
  const uint64_t flt = minFlt();
  AccessResult ra;
  AccessResult rb;
  lockMutex(g1().vmaLock());
  {
    InstalledHook installed(lineUp);
    testing::BoundThread ta(kernel->context(), [&] {
      LineUp::role = 1;
      ra = a.load(va + 0x1000);
    });
    testing::BoundThread tb(kernel->context(), [&] {
      LineUp::role = 2;
      rb = b.load(va + 0x8000);
    });
    bothWait.wait();
    unlockMutex(g1().vmaLock());
    ta.join();
    tb.join();
  }
  EXPECT_TRUE(ra.sig.none());
  EXPECT_TRUE(rb.sig.none());
  EXPECT_EQ(since(before, "mm.fault.fault"), 2U) << "both reached the handler";
  EXPECT_EQ(since(before, "vfio.vma_list.fills"), 1U) << "one filled, one found it listed";
  EXPECT_EQ(since(before, "mm.pfn_insert.pte"), 16U);
  EXPECT_EQ(leaves(va, k64K).pte, 16U);
  EXPECT_EQ(g1().listLength(), 1U);
  EXPECT_EQ(minFlt() - flt, 2U) << "NOPAGE counts a minor fault for each";
}

TEST_P(VmaListTest, FORK_02_OpenBeforeCopyChildKeepsThePtesAndEscapesTheZap) {
  for (const char* profile : {"linux-6.1", "linux-6.9"}) {
    SCOPED_TRACE(profile);
    boot(DesignKind::kVmaList, profile);
    ASSERT_TRUE(kernel->profile().mm.forkOpenBeforeCopy);
    const ForkRun r = forkThenDisableMemory();
    EXPECT_EQ(r.childLeavesAtFork.pte, 16U) << "the parent's PTEs, copied after ->open";
    EXPECT_EQ(r.childFaults, 0U);
    EXPECT_EQ(r.listLength, 1U);
    EXPECT_FALSE(r.childListed);
    EXPECT_EQ(r.parentWhileOff.signo, SigInfo::kSigbus);
    ASSERT_EQ(r.childWhileOff.size(), 3U);
    for (const AccessResult& a : r.childWhileOff) {
      EXPECT_TRUE(a.sig.none()) << "the child's PTEs survived the zap";
      EXPECT_EQ(a.value, kAllOnes32) << "master abort: decode is off";
    }
    EXPECT_EQ(r.violationsWhileOff, 3U) << "one invariant-1 violation per access";
  }
}

// 6.1.95-6.1.190 (and mainline <= 6.8): ->open(child) runs after the copy.
TEST_P(VmaListTest, FORK_05_CopyThenOpenZapsTheChildWhichRefillsAndIsListed) {
  KernelProfile profile = namedProfile("linux-6.1");
  profile.mm.forkOpenBeforeCopy = false;
  bootProfile(DesignKind::kVmaList, profile);
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  populate(va, k64K);
  auto child = proc->fork();
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(leaves(va, k64K, child.get()).total(), 0U) << "->open zapped the copied PTEs";
  EXPECT_EQ(leaves(va, k64K).pte, 16U);
  EXPECT_EQ(g1().listLength(), 1U);
  const uint64_t flt = minFlt(child.get());
  populate(va, k64K, child.get());
  EXPECT_EQ(minFlt(child.get()) - flt, 1U) << "one fault refilled the whole VMA";
  EXPECT_EQ(leaves(va, k64K, child.get()).pte, 16U);
  EXPECT_TRUE(listed(va, child.get()));
  EXPECT_EQ(g1().listLength(), 2U);
  const uint64_t v0 = violations();
  setMem(false);
  EXPECT_EQ(touch(va).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(touch(va + 0x5000, child.get()).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(violations(), v0);
  EXPECT_EQ(g1().listLength(), 0U);
}

// split v6.5 (linux-6.9): the pieces that stay mapped are the new structures.
TEST_P(VmaListTest, SPLIT_03_KeptHalfIsANewStructureZappedAndUnlisted) {
  ASSERT_EQ(kernel->profile().mm.munmapSplitStyle, MunmapSplitStyle::kV6_5);
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  populate(va, k64K);
  const void* original = identityAt(va);
  ASSERT_TRUE(listed(va));
  ASSERT_EQ(proc->munmap(va, 32 * kKiB), 0);
  const auto v = vmas();
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0].start, VirtAddr(va + 32 * kKiB));
  EXPECT_NE(v[0].identity, original) << "the kept half is a new structure";
  EXPECT_EQ(leaves(va + 32 * kKiB, 32 * kKiB).total(), 0U) << "->open zapped it";
  EXPECT_FALSE(listed(va + 32 * kKiB));
  EXPECT_EQ(g1().listLength(), 0U) << "the removed half was the listed one: closed, delisted";
  const uint64_t flt = minFlt();
  populate(va + 32 * kKiB, 32 * kKiB);
  EXPECT_EQ(minFlt() - flt, 1U);
  EXPECT_EQ(leaves(va + 32 * kKiB, 32 * kKiB).pte, 8U);
  EXPECT_EQ(translate(va + 32 * kKiB).pfn, Pfn(kBar0Pfn + 8));
  EXPECT_TRUE(listed(va + 32 * kKiB));
  EXPECT_EQ(g1().listLength(), 1U);
}

// split v6.1 (linux-6.1, observed on 6.1.192).
TEST_P(VmaListTest, SPLIT_06_V61SplitKeepsTheLowerPieceOriginal) {
  boot(DesignKind::kVmaList, "linux-6.1");
  ASSERT_EQ(kernel->profile().mm.munmapSplitStyle, MunmapSplitStyle::kV6_1);
  const uint64_t a = mapAt(kBar0Offset, k64K, kVaA);
  const uint64_t b = mapAt(kBar0Offset, k64K, kVaB);
  populate(a, k64K);
  populate(b, k64K);
  const void* originalA = identityAt(a);
  const void* originalB = identityAt(b);
  ASSERT_EQ(g1().listLength(), 2U);

  // (a) the first 16 KiB: the rest is the original structure.
  ASSERT_EQ(proc->munmap(a, 16 * kKiB), 0);
  EXPECT_EQ(identityAt(a + 16 * kKiB), originalA);
  EXPECT_EQ(leaves(a + 16 * kKiB, 48 * kKiB).pte, 12U);
  EXPECT_TRUE(listed(a + 16 * kKiB));
  uint64_t flt = minFlt();
  populate(a + 16 * kKiB, 48 * kKiB);
  EXPECT_EQ(minFlt() - flt, 0U);

  // (b) [VA+16 KiB, VA+32 KiB): lower piece original, upper piece new.
  ASSERT_EQ(proc->munmap(b + 16 * kKiB, 16 * kKiB), 0);
  EXPECT_EQ(identityAt(b), originalB);
  EXPECT_EQ(leaves(b, 16 * kKiB).pte, 4U);
  EXPECT_TRUE(listed(b));
  const void* upper = identityAt(b + 32 * kKiB);
  EXPECT_NE(upper, originalB);
  EXPECT_EQ(leaves(b + 32 * kKiB, 32 * kKiB).total(), 0U);
  EXPECT_FALSE(listed(b + 32 * kKiB));
  EXPECT_EQ(g1().listLength(), 2U);
  flt = minFlt();
  populate(b, 16 * kKiB);
  EXPECT_EQ(minFlt() - flt, 0U);
  ASSERT_TRUE(touch(b + 48 * kKiB).sig.none());
  EXPECT_EQ(minFlt() - flt, 1U);
  EXPECT_EQ(leaves(b + 32 * kKiB, 32 * kKiB).pte, 8U) << "one fault refilled the whole piece";
  EXPECT_EQ(translate(b + 32 * kKiB).pfn, Pfn(kBar0Pfn + 8));
  EXPECT_TRUE(listed(b + 32 * kKiB));
  EXPECT_EQ(g1().listLength(), 3U);
}

TEST_P(VmaListTest, MPROT_04_OuterPiecesAreNewTheMiddleKeepsEntryAndPtes) {
  for (const char* profile : {"linux-6.1", "linux-6.9"}) {
    SCOPED_TRACE(profile);
    boot(DesignKind::kVmaList, profile);
    const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
    populate(va, k64K);
    const void* original = identityAt(va);
    ASSERT_EQ(proc->mprotect(va + 16 * kKiB, 16 * kKiB, prot::kRead), 0);
    const auto v = vmas();
    ASSERT_EQ(v.size(), 3U);
    EXPECT_NE(v[0].identity, original);
    EXPECT_EQ(v[1].identity, original);
    EXPECT_NE(v[2].identity, original);
    EXPECT_EQ(leaves(va, 16 * kKiB).total(), 0U);
    EXPECT_EQ(leaves(va + 16 * kKiB, 16 * kKiB).pte, 4U);
    EXPECT_EQ(leaves(va + 32 * kKiB, 32 * kKiB).total(), 0U);
    EXPECT_FALSE(listed(va));
    EXPECT_TRUE(listed(va + 16 * kKiB));
    EXPECT_FALSE(listed(va + 32 * kKiB));
    EXPECT_EQ(g1().listLength(), 1U);
    EXPECT_FALSE(pte::isWritable(translate(va + 16 * kKiB).entry));

    const CounterSnapshot before = counters();
    uint64_t flt = minFlt();
    const SigInfo s = proc->thread().store(va + 16 * kKiB, 1, 4).sig;
    EXPECT_EQ(s.signo, SigInfo::kSigsegv);
    EXPECT_EQ(s.code, SigInfo::kSegvAccerr);
    EXPECT_EQ(since(before, "mm.fault.fault"), 0U) << "no fault-handler call";
    EXPECT_EQ(since(before, "vfio.vma_list.fills"), 0U) << "no refill";
    populate(va + 16 * kKiB, 16 * kKiB);
    EXPECT_EQ(minFlt() - flt, 0U);

    ASSERT_TRUE(touch(va).sig.none());
    EXPECT_EQ(minFlt() - flt, 1U);
    EXPECT_EQ(leaves(va, 16 * kKiB).pte, 4U);
    ASSERT_TRUE(touch(va + 60 * kKiB).sig.none());
    EXPECT_EQ(minFlt() - flt, 2U);
    EXPECT_EQ(leaves(va + 32 * kKiB, 32 * kKiB).pte, 8U);
    EXPECT_EQ(translate(va + 32 * kKiB).pfn, Pfn(kBar0Pfn + 8));
    EXPECT_EQ(g1().listLength(), 3U);
  }
}

TEST_P(VmaListTest, MREMAP_03_MovedPtesEscapeTheZap) {
  for (const char* profile : {"linux-6.1", "linux-6.9"}) {
    SCOPED_TRACE(profile);
    boot(DesignKind::kVmaList, profile);
    const MremapRun r = moveThenDisableMemory();
    EXPECT_EQ(r.moved, static_cast<long>(kVaB));
    EXPECT_EQ(r.source.total(), 0U);
    EXPECT_EQ(r.dest.pte, 16U);
    EXPECT_EQ(r.faultsAfterMove, 0U) << "no fault after the move";
    EXPECT_EQ(r.listLength, 0U) << "source closed, destination opened empty and never listed";
    ASSERT_EQ(r.whileOff.size(), 2U);
    for (const AccessResult& a : r.whileOff) {
      EXPECT_TRUE(a.sig.none()) << "no SIGBUS while MEM=0";
      EXPECT_EQ(a.value, kAllOnes32);
    }
    EXPECT_EQ(r.violationsWhileOff, 2U) << "one invariant-1 violation per access";
    EXPECT_TRUE(r.afterOn.sig.none());
    EXPECT_EQ(r.faultsAfterOn, 0U) << "no refault after MEM=1: the zap never saw them";
  }
}

// G1 rewrote vm_pgoff before the VMA was linked, so i_mmap is keyed by pfn:
// unmap_mapping_range by the file offsets the user mapped finds nothing.
TEST_P(VmaListTest, FS_03_IMmapKeysArePfnsSoAFileOffsetZapFindsNothing) {
  const uint64_t a = mapAt(kBar0Offset, k64K, kVaA);
  const uint64_t b = mapAt(kBar2Offset, 2 * kMiB, kVaB);
  populate(a, k64K);
  ASSERT_TRUE(touch(b).sig.none());
  ASSERT_EQ(leaves(b, 2 * kMiB).pte, 512U);
  AddressSpace& mapping = dev->pci().mapping();
  EXPECT_EQ(mapping.unmapMappingRange(kBar0Offset, k64K, true), 0U);
  EXPECT_EQ(mapping.unmapMappingRange(kBar2Offset, 2 * kGiB, true), 0U);
  EXPECT_EQ(leaves(a, k64K).pte, 16U);
  EXPECT_EQ(leaves(b, 2 * kMiB).pte, 512U);
  // The same call by pfn "offsets" is what finds them.
  EXPECT_EQ(mapping.unmapMappingRange(kBar0Pfn << kPageShift, k64K, true), 16U);
  EXPECT_EQ(leaves(a, k64K).total(), 0U);
}

// An exiting process: its mm has no users left (mmget_not_zero fails) while
// exit_mmap has not yet reached ->close. A Process tears its mm down while it
// still owns it, so the exiting mm here is a bare Mm whose last owner drops
// it on thread X; X is held inside exit_mmap (waiting for the mmap lock the
// test holds) for the whole zap.
TEST_P(VmaListTest, ZAP_05_ZapTakesEachLiveMmapLockOnceAndDropsTheExitingEntry) {
  // P1: two VMAs; P2: one; E: one, listed second. P2 is forked before P1
  // maps anything, so it shares P1's device fd (the group opens only once)
  // and has no VMA but its own.
  auto p2 = proc->fork();
  ASSERT_NE(p2, nullptr);
  const uint64_t a1 = mapAt(kBar0Offset, k64K, kVaA);
  const uint64_t b1 = mapAt(kBar2Offset, 2 * kMiB, kVaB);
  ASSERT_EQ(
      p2->mmap(kVaA, k64K, prot::kRead | prot::kWrite, map::kShared | map::kFixed, fd, kBar0Offset),
      static_cast<long>(kVaA));

  std::unique_ptr<Mm> exitedMm;  // where the exiting mm's memory stays until the end
  std::shared_ptr<Mm> exiting(new Mm(kernel->machine(), kernel->profile().mm), [&](Mm* m) {
    m->exitMmap();  // exit_mmap() with mm_users already 0
    exitedMm.reset(m);
  });
  auto file = proc->deviceFile(fd)->shared_from_this();
  auto eva = exiting->mmap(VirtAddr(0), k64K, prot::kRead | prot::kWrite, map::kShared, file, 0);
  ASSERT_TRUE(eva);
  Task exitingTask;
  exitingTask.comm = "exiting";
  exitingTask.mm = exiting.get();

  ASSERT_TRUE(touch(a1).sig.none());
  ASSERT_TRUE(fixupUserFault(exitingTask, *exiting, *eva, 0));
  ASSERT_TRUE(touch(kVaA, p2.get()).sig.none());
  ASSERT_TRUE(touch(b1).sig.none());
  ASSERT_EQ(g1().listLength(), 4U);
  Mm* const exitingMm = exiting.get();

  const uint32_t off = configRead(kPciCommand, 2) & ~uint32_t{kPciCommandMemory};
  std::latch exitBlocked(1);
  std::atomic<int> state{0};  // 1: the zap returned; 2: it went for the exiting mm's lock
  LineUp lineUp;
  lineUp.on(3, LineUp::Event::kWait, &exitingMm->mmapLock(), 1, [&] { exitBlocked.count_down(); });
  LineUp::Rule& p1Locks = lineUp.on(2, LineUp::Event::kBeforeAcquire, &proc->mm().mmapLock(), 0);
  LineUp::Rule& p2Locks = lineUp.on(2, LineUp::Event::kBeforeAcquire, &p2->mm().mmapLock(), 0);
  lineUp.on(2, LineUp::Event::kBeforeAcquire, &exitingMm->mmapLock(), 1, [&] {
    int expected = 0;
    if (state.compare_exchange_strong(expected, 2)) state.notify_all();
  });
  const CounterSnapshot before = counters();
  long written = 0;
  {
    InstalledHook installed(lineUp);
    mmapReadLock(*exitingMm);
    testing::BoundThread exiter(kernel->context(), [&, mine = std::move(exiting)]() mutable {
      LineUp::role = 3;
      mine.reset();  // the last user: exit_mmap
    });
    exitBlocked.wait();
    testing::BoundThread zapper(kernel->context(), [&] {
      LineUp::role = 2;
      written = proc->pwrite(fd, &off, 2, kConfigOffset + kPciCommand);
      int expected = 0;
      if (state.compare_exchange_strong(expected, 1)) state.notify_all();
    });
    state.wait(0);
    EXPECT_EQ(state.load(), 1) << "the zap went for the exiting mm's mmap lock";
    mmapReadUnlock(*exitingMm);
    zapper.join();
    exiter.join();
  }
  EXPECT_EQ(written, 2);
  EXPECT_EQ(p1Locks.seen.load(), 1) << "P1's mmap lock, once for both its VMAs";
  EXPECT_EQ(p2Locks.seen.load(), 1);
  EXPECT_EQ(g1().listLength(), 0U);
  EXPECT_EQ(since(before, "vfio.vma_list.zapped"), 3U)
      << "the exiting entry is dropped, not zapped";
  EXPECT_EQ(leaves(a1, k64K).total(), 0U);
  EXPECT_EQ(leaves(b1, 2 * kMiB).total(), 0U);
  EXPECT_EQ(leaves(kVaA, k64K, p2.get()).total(), 0U);
  EXPECT_EQ(touch(a1).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(touch(kVaA, p2.get()).sig.signo, SigInfo::kSigbus);
  EXPECT_NE(exitedMm, nullptr);
}

// LOCK-02's "every scenario with lockdep", on G1 (linux-6.9: lockdep on).
TEST_P(VmaListTest, LOCK_03_OrderIsMmapLockVmaLockMemoryLock) {
  lockdep::resetGraph();
  lockdep::clearReports();
  const uint64_t a = mapAt(kBar0Offset, k64K, kVaA);
  const uint64_t b = mapAt(kBar2Offset, 4 * kMiB, kVaB);
  populate(a, k64K);  // fault: mmap_lock -> vma_lock -> memory_lock
  ASSERT_TRUE(touch(b).sig.none());
  Thread& t1 = *proc->addThread(1);
  ASSERT_TRUE(t1.load(a + 0x1000).sig.none());
  auto child = proc->fork();  // ->open on the child
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(touch(a, child.get()).sig.none());
  ASSERT_EQ(proc->mprotect(a + 16 * kKiB, 16 * kKiB, prot::kRead), 0);  // ->open on new pieces
  ASSERT_EQ(proc->munmap(b + 2 * kMiB, 2 * kMiB), 0);                   // ->close
  setMem(false);  // the zap: vma_lock, each mmap_lock (read) then vma_lock, memory_lock
  EXPECT_EQ(touch(a).sig.signo, SigInfo::kSigbus);
  setMem(true);
  populate(a, k64K);
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_RESET, nullptr), 0);
  populate(a, k64K);
  uapi::HotResetArg args = uapi::hotResetArg({groupFd});
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, args.get()), 0);
  ASSERT_TRUE(touch(b).sig.none());
  ASSERT_EQ(proc->mremap(b, 2 * kMiB, 2 * kMiB, mremap::kMayMove | mremap::kFixed, kVaB + kGiB),
            static_cast<long>(kVaB + kGiB));
  child->exit();

  EXPECT_TRUE(lockdep::hasDependency(kMmapLockClass, kVfioVmaLockClass));
  EXPECT_TRUE(lockdep::hasDependency(kVfioVmaLockClass, kVfioMemoryLockClass));
  EXPECT_FALSE(lockdep::hasDependency(kVfioVmaLockClass, kMmapLockClass))
      << "an mmap lock taken while holding vma_lock";
  EXPECT_FALSE(lockdep::hasDependency(kVfioMemoryLockClass, kVfioVmaLockClass));
  EXPECT_FALSE(lockdep::hasDependency(kVfioMemoryLockClass, kMmapLockClass));
  EXPECT_EQ(lockdep::reportCount(lockdep::ReportKind::kCircularDependency), 0U);
  EXPECT_EQ(lockdep::reportCount(lockdep::ReportKind::kRecursiveLocking), 0U);
  // Only FAULT-05's reports: one per filling fault.
  EXPECT_GT(lockdep::reportCount(lockdep::ReportKind::kAssertHeldWrite), 0U);
  EXPECT_EQ(lockdep::reportCount(), lockdep::reportCount(lockdep::ReportKind::kAssertHeldWrite));
}

INSTANTIATE_TEST_SUITE_P(G1, VmaListTest, ::testing::Values(DesignKind::kVmaList), designParamName);

// ---------------------------------------------------------------------------
// The same steps on every other design: none of G1's holes.

class NoG1HoleTest : public G1Fixture {};

TEST_P(NoG1HoleTest, FORK_02_ChildLosesItsEntriesWithTheParent) {
  const ForkRun r = forkThenDisableMemory();
  EXPECT_EQ(r.childLeavesAtFork.pte, 16U);
  EXPECT_EQ(r.childFaults, 0U);
  EXPECT_EQ(r.parentWhileOff.signo, SigInfo::kSigbus);
  ASSERT_EQ(r.childWhileOff.size(), 3U);
  for (const AccessResult& a : r.childWhileOff) {
    EXPECT_EQ(a.sig.signo, SigInfo::kSigbus);
    EXPECT_EQ(a.sig.code, SigInfo::kBusAdrerr);
  }
  EXPECT_EQ(r.violationsWhileOff, 0U);
}

TEST_P(NoG1HoleTest, MREMAP_03_MovedEntriesAreZapped) {
  const MremapRun r = moveThenDisableMemory();
  EXPECT_EQ(r.moved, static_cast<long>(kVaB));
  EXPECT_EQ(r.source.total(), 0U);
  EXPECT_EQ(r.dest.pte, 16U);
  EXPECT_EQ(r.faultsAfterMove, 0U);
  ASSERT_EQ(r.whileOff.size(), 2U);
  for (const AccessResult& a : r.whileOff) EXPECT_EQ(a.sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(r.violationsWhileOff, 0U);
  EXPECT_TRUE(r.afterOn.sig.none());
  EXPECT_EQ(violations(), 0U);
}

// Their faults never change vm_flags: nothing for the assertion to catch,
// on profiles where it WARNs even without lockdep.
TEST_P(NoG1HoleTest, FAULT_05_FaultsTripNoAssertion) {
  ASSERT_EQ(kernel->profile().mm.vmFlagsWriteAssert, VmFlagsWriteAssert::kAlways);
  for (bool lockdepOn : {true, false}) {
    SCOPED_TRACE(lockdepOn ? "lockdep" : "no lockdep");
    boot(GetParam());
    std::unique_ptr<LockdepOff> off;
    if (!lockdepOn) off = std::make_unique<LockdepOff>();
    lockdep::clearReports();
    const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
    populate(va, k64K);
    EXPECT_EQ(leaves(va, k64K).pte, 16U);
    EXPECT_EQ(lockdep::reportCount(), 0U);
  }
}

// G2+ zap through i_mmap without any mmap lock, so the hot reset goes through
// while the mapper holds its mmap lock. `prefault` also goes through (never
// -EBUSY), but its refill after the reset runs in the resetting thread and
// takes each mapper's mmap lock (docs/design-prefault.md, "Limits"): the
// ioctl waits until the mapper lets go.
TEST_P(NoG1HoleTest, RESET_06_HotResetNeedsNoMmapLock) {
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  populate(va, k64K);
  const CounterSnapshot before = counters();
  const HotResetRun r = hotResetWhileMmapWriteLocked();
  EXPECT_EQ(r.result, 0);
  EXPECT_EQ(since(before, "pci.bus_reset"), 1U);
  EXPECT_FALSE(dev->pci().memoryLock().isLocked());
  if (design() == DesignKind::kPrefault) {
    EXPECT_TRUE(r.waitedForMmapLock);
    EXPECT_EQ(leaves(va, k64K).pte, 16U) << "refilled after the reset";
  } else {
    EXPECT_FALSE(r.waitedForMmapLock);
    EXPECT_EQ(leaves(va, k64K).total(), 0U) << "zapped by the reset";
  }
  populate(va, k64K);
  EXPECT_EQ(violations(), 0U);
}

std::vector<DesignKind> designsButG1() {
  std::vector<DesignKind> out;
  for (DesignKind d : allDesigns())
    if (d != DesignKind::kVmaList) out.push_back(d);
  return out;
}

INSTANTIATE_TEST_SUITE_P(G2Plus, NoG1HoleTest, ::testing::ValuesIn(designsButG1()),
                         designParamName);

// The designs table's expectsHoles, against what each design does: sim
// counts a run's violations as failures unless the row expects them.
class HoleTraitTest : public G1Fixture {};

TEST_P(HoleTraitTest, ExpectsHolesIffAForkedChildReachesTheBarWithDecodeOff) {
  const ForkRun r = forkThenDisableMemory();
  EXPECT_EQ(r.violationsWhileOff != 0, designTraits(GetParam()).expectsHoles);
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, HoleTraitTest, ::testing::ValuesIn(allDesigns()),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
