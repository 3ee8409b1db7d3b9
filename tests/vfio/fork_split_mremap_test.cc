// What mm does to a vfio mapping, seen through vfio on every design: fork
// (FORK-01/03/04, including fork racing the MEM=0 zap through the orderings
// that matter, lined up deterministically), munmap splits (SPLIT-01/02/04),
// mremap (MREMAP-01/02), mprotect (MPROT-01/02/03), madvise and friends
// (MADV-01..03), and where mmap places a BAR (ALIGN-01..04, the last three
// per kernel profile, ALIGN-03 with QEMU 9.2's user-space alignment).
// An item limited to some generations is skipped on the others; G1's own
// fork/split/mremap/mprotect rules are vma_list_test.cc's.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/byte_units.h"
#include "line_up.h"
#include "mm/address_space.h"
#include "mm/mm.h"
#include "mm/page_table.h"
#include "mm/vma.h"
#include "sync/sched_hook.h"
#include "vfio/vfio_pci_core_device.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

constexpr uint64_t kVaA = 0x6000'0000'0000;  // fixed addresses, far from mmap_base
constexpr uint64_t kVaB = 0x6100'0000'0000;
constexpr uint64_t kVaH = 0x6200'0000'0000;   // 1 GiB aligned
constexpr uint64_t kVaH2 = 0x6300'0000'0000;  // 1 GiB aligned
constexpr uint64_t kVaP = 0x6400'0020'0000;   // 2 MiB aligned, not 1 GiB aligned
constexpr uint64_t kVaP2 = 0x6500'0060'0000;  // 2 MiB aligned, not 1 GiB aligned
constexpr uint64_t k64K = 64 * kKiB;
constexpr uint64_t kBar0Pfn = 0xF0000;
constexpr uint64_t kBar2Pfn = 0x400'0000;

// Holds a thread at a point until the test opens it.
class Gate {
 public:
  void pass() {  // on the held thread
    arrived_.count_down();
    open_.wait();
  }
  void awaitArrival() { arrived_.wait(); }
  void open() { open_.count_down(); }

 private:
  std::latch arrived_{1};
  std::latch open_{1};
};

CounterSnapshot counters() { return CounterSet::current().snapshot(); }
uint64_t since(const CounterSnapshot& before, std::string_view name) {
  return counters().since(before).get(name);
}

struct Leaf {
  uint64_t va;
  PtLevel level;
  uint64_t entry;
};

class ForkSplitMremapTest : public VfioTest {
 protected:
  bool isG3() const { return designTraits(design()).mapsHugeEntries; }
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
  std::vector<Leaf> leafList(uint64_t va, uint64_t len, Process* p = nullptr) {
    std::vector<Leaf> out;
    (p ? *p : *proc)
        .mm()
        .pageTable()
        .forEachLeaf(VirtAddr(va), VirtAddr(va + len), [&](VirtAddr a, PtLevel l, uint64_t e) {
          out.push_back(Leaf{a.value(), l, e});
        });
    return out;
  }
  uint64_t violations() { return kernel->pciHost().decodeViolationCount(); }
  uint32_t commandWithMem(bool on) {
    const uint32_t cmd = configRead(kPciCommand, 2);
    return on ? (cmd | kPciCommandMemory) : (cmd & ~uint32_t{kPciCommandMemory});
  }
  // One 4 KiB mapping at the top of the mmap area: plain top-down placement
  // below it is then 4 KiB off every 2 MiB boundary.
  uint64_t premapTop() {
    const long top = map(kBar0Offset, 4 * kKiB);
    EXPECT_GT(top, 0);
    return static_cast<uint64_t>(top);
  }
};

// ---------------------------------------------------------------------------
// fork

TEST_P(ForkSplitMremapTest, FORK_01_ChildCopiesTheEntriesAndFollowsTheParentInIMmap) {
  if (isG1()) GTEST_SKIP() << "[G2+]; G1: FORK_02/FORK_05 in vma_list_test.cc";
  const uint64_t a = mapAt(kBar0Offset, k64K, kVaA);
  const uint64_t b = mapAt(kBar0Offset, k64K, kVaB);  // same file offset: same i_mmap key
  populate(a, k64K);
  const auto parentLeaves = leafList(a, k64K);
  ASSERT_EQ(parentLeaves.size(), 16U);
  const auto parentVmas = vmas();
  auto child = proc->fork();
  ASSERT_NE(child, nullptr);
  const auto childLeaves = leafList(a, k64K, child.get());
  ASSERT_EQ(childLeaves.size(), 16U);
  for (size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(childLeaves[i].va, parentLeaves[i].va);
    EXPECT_TRUE(pte::isSpecial(childLeaves[i].entry));
    EXPECT_EQ(pte::pfnOf(childLeaves[i].entry), pte::pfnOf(parentLeaves[i].entry));
    EXPECT_EQ(pte::pfnOf(childLeaves[i].entry), Pfn(kBar0Pfn + i));
  }
  EXPECT_EQ(leafList(b, k64K, child.get()).size(), 0U);
  const uint64_t flt = minFlt(child.get());
  populate(a, k64K, child.get());
  EXPECT_EQ(minFlt(child.get()) - flt, 0U) << "the child took no fault";

  // Tree order: each child VMA right after its parent's (insert_after), not
  // after every VMA with the same key.
  const auto childVmas = vmas(child.get());
  ASSERT_EQ(parentVmas.size(), 2U);
  ASSERT_EQ(childVmas.size(), 2U);
  std::vector<const void*> order;
  AddressSpace& mapping = dev->pci().mapping();
  {
    ReadGuard g(mapping.iMmapRwsem());
    mapping.forEachVma(0, (6ULL << 28) - 1, [&](Vma& v) { order.push_back(&v); });
  }
  const std::vector<const void*> want = {parentVmas[0].identity, childVmas[0].identity,
                                         parentVmas[1].identity, childVmas[1].identity};
  EXPECT_EQ(order, want);
}

TEST_P(ForkSplitMremapTest, FORK_03_HugeLeavesAreCopiedOldAndStillWritable) {
  if (!isG3()) GTEST_SKIP() << "[G3]";
  const uint64_t h = mapAt(kBar2Offset, 2 * kGiB, kVaH);
  const uint64_t p = mapAt(kBar2Offset, 4 * kMiB, kVaP);
  ASSERT_TRUE(touch(h).sig.none());
  ASSERT_TRUE(touch(p).sig.none());
  ASSERT_EQ(translate(h).level, PtLevel::kPud);
  ASSERT_EQ(translate(p).level, PtLevel::kPmd);
  const auto parentH = leafList(h, 2 * kGiB);
  const auto parentP = leafList(p, 4 * kMiB);
  auto child = proc->fork();
  ASSERT_NE(child, nullptr);
  for (const auto& [range, parent, level] :
       {std::tuple{std::pair{h, 2 * kGiB}, &parentH, PtLevel::kPud},
        std::tuple{std::pair{p, 4 * kMiB}, &parentP, PtLevel::kPmd}}) {
    const auto copied = leafList(range.first, range.second, child.get());
    ASSERT_EQ(copied.size(), parent->size());
    ASSERT_FALSE(copied.empty());
    for (size_t i = 0; i < copied.size(); ++i) {
      EXPECT_EQ(copied[i].va, (*parent)[i].va);
      EXPECT_EQ(copied[i].level, level);
      EXPECT_EQ(pte::pfnOf(copied[i].entry), pte::pfnOf((*parent)[i].entry));
      EXPECT_TRUE(pte::isSpecial(copied[i].entry));
      EXPECT_TRUE(pte::isHugeLeaf(copied[i].entry));
      EXPECT_NE((*parent)[i].entry & pte::kAccessed, 0U);
      EXPECT_EQ(copied[i].entry & pte::kAccessed, 0U) << "marked old";
      EXPECT_TRUE(pte::isWritable(copied[i].entry)) << "shared: never write-protected";
    }
  }
  EXPECT_EQ(translate(h, child.get()).pfn, Pfn(kBar2Pfn));
  const uint64_t flt = minFlt(child.get());
  EXPECT_TRUE(child->thread().store(h + 0x10, 7, 4).sig.none());
  EXPECT_TRUE(child->thread().store(p + 0x10, 7, 4).sig.none());
  EXPECT_EQ(minFlt(child.get()) - flt, 0U);
}

TEST_P(ForkSplitMremapTest, FORK_04_ParentAndChildAreBothZapped) {
  if (isG1()) GTEST_SKIP() << "[G2+]; G1: FORK_02 in vma_list_test.cc";
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  populate(va, k64K);
  auto child = proc->fork();
  ASSERT_NE(child, nullptr);
  ASSERT_EQ(leaves(va, k64K, child.get()).pte, 16U);
  populate(va, k64K, child.get());  // the child's TLB holds them too
  const uint64_t v0 = violations();
  setMem(false);
  EXPECT_EQ(leaves(va, k64K).total(), 0U);
  EXPECT_EQ(leaves(va, k64K, child.get()).total(), 0U);
  for (uint64_t off = 0; off < k64K; off += 0x5000) {
    EXPECT_EQ(touch(va + off).sig.signo, SigInfo::kSigbus);
    const SigInfo s = touch(va + off, child.get()).sig;
    EXPECT_EQ(s.signo, SigInfo::kSigbus);
    EXPECT_EQ(s.code, SigInfo::kBusAdrerr);
  }
  EXPECT_EQ(violations(), v0);
}

// fork (thread F) and a MEM=0 config write (thread Z) on one populated BAR0
// mapping, through the orderings that matter, each made deterministic by
// holding one thread at a lock operation (or at the zap's visit of a VMA)
// while the other runs. Whatever the order, once both returned the child
// translates nothing and its touch is SIGBUS.
TEST_P(ForkSplitMremapTest, FORK_04_ForkRacingTheZapNeverLeavesTheChildATranslation) {
  if (isG1()) GTEST_SKIP() << "[G2+]; G1: FORK_02 in vma_list_test.cc";
  enum class Order {
    kForkThenZap,
    kZapThenFork,
    kForkWhileTheZapHoldsMemoryLock,    // Z held before i_mmap_rwsem; F runs through
    kZapWhileForkIsBeforeTheLink,       // F held before linking the child into i_mmap
    kZapWhileForkIsBetweenLinkAndCopy,  // F held after linking, before copying
    kForkQueuedBehindTheZapWalk,        // Z held inside its walk; F waits for i_mmap_rwsem
    kCopyWhileTheZapIsAtTheParent,      // F linked; Z held at the parent; F copies all
    kCopyAfterTheParentWasZapped,       // F linked; Z held at the child; F copies nothing
    kZapInTheMiddleOfTheCopy,           // F held after copying 7 PTEs (child PTL held)
  };
  const struct {
    Order order;
    const char* name;
  } orders[] = {
      {Order::kForkThenZap, "fork, then zap"},
      {Order::kZapThenFork, "zap, then fork"},
      {Order::kForkWhileTheZapHoldsMemoryLock, "fork while the zap holds memory_lock"},
      {Order::kZapWhileForkIsBeforeTheLink, "zap while fork is before the i_mmap link"},
      {Order::kZapWhileForkIsBetweenLinkAndCopy, "zap between fork's link and copy"},
      {Order::kForkQueuedBehindTheZapWalk, "fork queued behind the zap's i_mmap walk"},
      {Order::kCopyWhileTheZapIsAtTheParent, "copy while the zap is at the parent"},
      {Order::kCopyAfterTheParentWasZapped, "copy after the parent was zapped"},
      {Order::kZapInTheMiddleOfTheCopy, "zap in the middle of the copy"},
  };
  constexpr int kForker = 1;
  constexpr int kZapper = 2;
  for (const auto& o : orders) {
    SCOPED_TRACE(o.name);
    boot(GetParam());
    const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
    populate(va, k64K);
    Mm& parentMm = proc->mm();
    AddressSpace& mapping = dev->pci().mapping();
    const void* iMmap = &mapping.iMmapRwsem();
    PageTable::Slot slot;
    ASSERT_EQ(parentMm.pageTable().slotAt(VirtAddr(va), PtLevel::kPte, false, &slot),
              PageTable::WalkStatus::kOk);
    const void* parentPtl = &parentMm.pageTable().ptlFor(slot);
    const uint32_t memOff = commandWithMem(false);

    std::shared_ptr<Process> child;
    long written = 0;
    const auto runFork = [&] {
      LineUp::role = kForker;
      child = proc->fork();
    };
    const auto runZap = [&] {
      LineUp::role = kZapper;
      written = proc->pwrite(fd, &memOff, 2, kConfigOffset + kPciCommand);
    };
    LineUp lineUp;
    Gate forkGate;
    Gate zapGate;
    std::latch forkWaits(1);
    std::latch zapWaits(1);
    std::vector<bool> visits;  // the zap's i_mmap visits: true = the parent's VMA
    std::function<void()> atParent;
    std::function<void()> atChild;
    mapping.setZapObserver([&](const Vma& v) {
      if (LineUp::role != kZapper) return;
      const bool parent = &v.mm() == &parentMm;
      visits.push_back(parent);
      if (parent && atParent) atParent();
      if (!parent && atChild) atChild();
    });
    LeafCounts childMidway;  // the child's entries at the moment that matters
    {
      InstalledHook installed(lineUp);
      switch (o.order) {
        case Order::kForkThenZap:
          std::thread(runFork).join();
          if (child != nullptr) childMidway = leaves(va, k64K, child.get());
          EXPECT_EQ(childMidway.pte, 16U);
          std::thread(runZap).join();
          break;
        case Order::kZapThenFork:
          std::thread(runZap).join();
          std::thread(runFork).join();
          break;
        case Order::kForkWhileTheZapHoldsMemoryLock: {
          lineUp.on(kZapper, LineUp::Event::kBeforeAcquire, iMmap, 1, [&] { zapGate.pass(); });
          std::thread z(runZap);
          zapGate.awaitArrival();
          std::thread(runFork).join();
          if (child != nullptr) childMidway = leaves(va, k64K, child.get());
          EXPECT_EQ(childMidway.pte, 16U) << "copied before the zap's walk";
          zapGate.open();
          z.join();
          break;
        }
        case Order::kZapWhileForkIsBeforeTheLink:
        case Order::kZapWhileForkIsBetweenLinkAndCopy: {
          const LineUp::Event ev = o.order == Order::kZapWhileForkIsBeforeTheLink
                                       ? LineUp::Event::kBeforeAcquire
                                       : LineUp::Event::kAfterRelease;
          lineUp.on(kForker, ev, iMmap, 1, [&] { forkGate.pass(); });
          std::thread f(runFork);
          forkGate.awaitArrival();
          std::thread(runZap).join();
          EXPECT_EQ(leaves(va, k64K).total(), 0U);
          forkGate.open();
          f.join();
          break;
        }
        case Order::kForkQueuedBehindTheZapWalk: {
          atParent = [&] { zapGate.pass(); };
          lineUp.on(kForker, LineUp::Event::kWait, iMmap, 1, [&] { forkWaits.count_down(); });
          std::thread z(runZap);
          zapGate.awaitArrival();
          std::thread f(runFork);
          forkWaits.wait();  // F holds both mmap locks and waits to link the child
          zapGate.open();
          z.join();
          f.join();
          EXPECT_EQ(visits, std::vector<bool>{true}) << "the child was linked after the walk";
          break;
        }
        case Order::kCopyWhileTheZapIsAtTheParent:
        case Order::kCopyAfterTheParentWasZapped: {
          const bool atTheParent = o.order == Order::kCopyWhileTheZapIsAtTheParent;
          lineUp.on(kForker, LineUp::Event::kAfterRelease, iMmap, 1, [&] { forkGate.pass(); });
          (atTheParent ? atParent : atChild) = [&] { zapGate.pass(); };
          std::thread f(runFork);
          forkGate.awaitArrival();  // the child is linked, nothing copied yet
          std::thread z(runZap);
          zapGate.awaitArrival();
          forkGate.open();
          f.join();
          if (child != nullptr) childMidway = leaves(va, k64K, child.get());
          EXPECT_EQ(childMidway.pte, atTheParent ? 16U : 0U);
          zapGate.open();
          z.join();
          EXPECT_EQ(visits, (std::vector<bool>{true, false})) << "parent first, then the child";
          break;
        }
        case Order::kZapInTheMiddleOfTheCopy: {
          // F's 8th parent-PTL acquisition copies the 8th PTE while holding
          // the child's PTE-table lock; Z zaps the parent and then waits for
          // that lock to zap the child.
          lineUp.on(kForker, LineUp::Event::kBeforeAcquire, parentPtl, 8, [&] { forkGate.pass(); });
          lineUp.on(kZapper, LineUp::Event::kWait, nullptr, 1, [&] { zapWaits.count_down(); });
          std::thread f(runFork);
          forkGate.awaitArrival();
          std::thread z(runZap);
          zapWaits.wait();
          EXPECT_EQ(leaves(va, k64K).total(), 0U) << "Z zapped the parent before waiting";
          forkGate.open();
          f.join();
          z.join();
          EXPECT_EQ(visits, (std::vector<bool>{true, false}));
          break;
        }
      }
    }
    mapping.setZapObserver({});
    ASSERT_NE(child, nullptr);
    EXPECT_EQ(written, 2);
    EXPECT_EQ(leaves(va, k64K).total(), 0U);
    EXPECT_EQ(leaves(va, k64K, child.get()).total(), 0U);
    for (uint64_t off = 0; off < k64K; off += kPageSize)
      EXPECT_FALSE(translate(va + off, child.get()).present) << std::hex << off;
    EXPECT_EQ(touch(va + 0x3000, child.get()).sig.signo, SigInfo::kSigbus);
    EXPECT_EQ(touch(va + 0x3000).sig.signo, SigInfo::kSigbus);
    EXPECT_EQ(violations(), 0U);
  }
}

// ---------------------------------------------------------------------------
// munmap and split

TEST_P(ForkSplitMremapTest, SPLIT_01_MiddleUnmapLeavesTwoVmasWithTheirPtes) {
  if (isG1()) GTEST_SKIP() << "[G2+]; G1: SPLIT_03/SPLIT_06 in vma_list_test.cc";
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  populate(va, k64K);
  const size_t mapCount = proc->mm().mapCount();
  const PgOff pgoff = vmas()[0].pgoff;
  ASSERT_EQ(proc->munmap(va + 16 * kKiB, 16 * kKiB), 0);
  const auto v = vmas();
  ASSERT_EQ(v.size(), 2U);
  EXPECT_EQ(v[0].start, VirtAddr(va));
  EXPECT_EQ(v[0].end, VirtAddr(va + 16 * kKiB));
  EXPECT_EQ(v[0].pgoff, pgoff);
  EXPECT_EQ(v[1].start, VirtAddr(va + 32 * kKiB));
  EXPECT_EQ(v[1].end, VirtAddr(va + k64K));
  EXPECT_EQ(v[1].pgoff, pgoff + 8) << "upper vm_pgoff advanced by 8 pages";
  EXPECT_EQ(proc->mm().mapCount(), mapCount + 1);
  EXPECT_EQ(leaves(va, 16 * kKiB).pte, 4U);
  EXPECT_EQ(leaves(va + 16 * kKiB, 16 * kKiB).total(), 0U);
  EXPECT_EQ(leaves(va + 32 * kKiB, 32 * kKiB).pte, 8U);
  EXPECT_EQ(translate(va + 32 * kKiB).pfn, Pfn(kBar0Pfn + 8));
  const uint64_t flt = minFlt();
  populate(va, 16 * kKiB);
  populate(va + 32 * kKiB, 32 * kKiB);
  EXPECT_EQ(minFlt() - flt, 0U) << "the surviving PTEs are intact";
  EXPECT_EQ(touch(va + 16 * kKiB).sig.signo, SigInfo::kSigsegv);
}

TEST_P(ForkSplitMremapTest, SPLIT_02_UnmapInsideAPmdLeafClearsIt) {
  if (!isG3()) GTEST_SKIP() << "[G3]";
  const uint64_t va = mapAt(kBar2Offset, 4 * kMiB, kVaP);
  ASSERT_TRUE(touch(va).sig.none());
  ASSERT_EQ(translate(va).level, PtLevel::kPmd);
  const CounterSnapshot before = counters();
  ASSERT_EQ(proc->munmap(va + kMiB, 4 * kKiB), 0);
  EXPECT_EQ(leaves(va, 2 * kMiB).total(), 0U) << "cleared, not split into PTEs";
  EXPECT_EQ(since(before, "mm.thp_split_pmd"), 1U);
  ASSERT_TRUE(touch(va).sig.none());
  EXPECT_EQ(translate(va).level, PtLevel::kPte);
  EXPECT_EQ(translate(va).pfn, Pfn(kBar2Pfn));
  ASSERT_TRUE(touch(va + kMiB + 4 * kKiB).sig.none());
  EXPECT_EQ(translate(va + kMiB + 4 * kKiB).level, PtLevel::kPte);
  EXPECT_EQ(translate(va + kMiB + 4 * kKiB).pfn, Pfn(kBar2Pfn + 257));
  EXPECT_EQ(leaves(va, 2 * kMiB).pmd, 0U);
}

TEST_P(ForkSplitMremapTest, SPLIT_04_UnalignedIsEinvalNothingMappedIsZero) {
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  populate(va, k64K);
  EXPECT_EQ(proc->munmap(va + 1, 4 * kKiB), -22);
  EXPECT_EQ(proc->munmap(va + 0x800, 4 * kKiB), -22);
  EXPECT_EQ(proc->munmap(va, 0), -22);
  EXPECT_EQ(proc->munmap(kVaB, k64K), 0);
  EXPECT_EQ(vmas().size(), 1U);
  EXPECT_EQ(leaves(va, k64K).pte, 16U);
}

// ---------------------------------------------------------------------------
// mremap

TEST_P(ForkSplitMremapTest, MREMAP_01_GrowFailsDontUnmapFailsShrinkDropsTheTail) {
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  populate(va, k64K);
  EXPECT_EQ(proc->mremap(va, k64K, 2 * k64K, 0), -14) << "grow in place";
  EXPECT_EQ(proc->mremap(va, k64K, 2 * k64K, mremap::kMayMove), -14) << "grow, may move";
  EXPECT_EQ(proc->mremap(va, k64K, 2 * k64K, mremap::kMayMove | mremap::kFixed, kVaB), -14);
  EXPECT_EQ(proc->mremap(va, k64K, k64K, mremap::kMayMove | mremap::kDontUnmap), -22);
  EXPECT_EQ(vmas().size(), 1U);
  EXPECT_EQ(leaves(va, k64K).pte, 16U);
  EXPECT_EQ(proc->mremap(va, k64K, 32 * kKiB, 0), static_cast<long>(va));
  const auto v = vmas();
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0].end, VirtAddr(va + 32 * kKiB));
  EXPECT_EQ(leaves(va + 32 * kKiB, 32 * kKiB).total(), 0U) << "the tail's entries are gone";
  EXPECT_EQ(touch(va + 32 * kKiB).sig.signo, SigInfo::kSigsegv);
  // The head: G1 under the v6.5 split (its default linux-6.9) keeps a new
  // structure, zapped by ->open (SPLIT-03); the others keep their entries.
  EXPECT_EQ(leaves(va, 32 * kKiB).pte, isG1() ? 0U : 8U);
  ASSERT_TRUE(touch(va).sig.none());
  EXPECT_EQ(leaves(va, 32 * kKiB).pte, 8U);
  EXPECT_EQ(translate(va + 0x7000).pfn, Pfn(kBar0Pfn + 7));
}

// mremap_to() unmaps a MREMAP_FIXED destination before vma_to_resize()
// refuses the grow: the refused call has already emptied it. Without
// MREMAP_FIXED a shrink only unmaps the tail, even one past the VMA.
TEST_P(ForkSplitMremapTest, MREMAP_01_ARefusedFixedMoveHasClearedItsDestination) {
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  populate(va, k64K);
  const auto mappedAtB = [&] {
    for (const auto& v : vmas())
      if (v.start == VirtAddr(kVaB)) return true;
    return false;
  };
  const int anon = map::kPrivate | map::kAnonymous | map::kFixed;
  ASSERT_EQ(proc->mmap(kVaB, 2 * k64K, prot::kRead | prot::kWrite, anon, -1, 0),
            static_cast<long>(kVaB));
  ASSERT_TRUE(mappedAtB());
  EXPECT_EQ(proc->mremap(va, k64K, 2 * k64K, mremap::kMayMove | mremap::kFixed, kVaB), -14);
  EXPECT_FALSE(mappedAtB()) << "the destination was unmapped";
  EXPECT_EQ(leaves(va, k64K).pte, 16U) << "the source stays";

  ASSERT_EQ(proc->mmap(kVaB, k64K, prot::kRead | prot::kWrite, anon, -1, 0),
            static_cast<long>(kVaB));
  EXPECT_EQ(
      proc->mremap(va, k64K, k64K, mremap::kMayMove | mremap::kFixed | mremap::kDontUnmap, kVaB),
      -22);
  EXPECT_FALSE(mappedAtB()) << "DONTUNMAP: cleared, then refused";

  EXPECT_EQ(proc->mremap(va + 32 * kKiB, 64 * kKiB, 16 * kKiB, 0),
            static_cast<long>(va + 32 * kKiB))
      << "the old range runs 32 KiB past the VMA";
  ASSERT_EQ(vmas().size(), 1U);
  EXPECT_EQ(vmas()[0].end, VirtAddr(va + 48 * kKiB));
}

TEST_P(ForkSplitMremapTest, MREMAP_02_MovedEntriesFollowAndAreZappedThere) {
  if (isG1()) GTEST_SKIP() << "[G2+]; G1: MREMAP_03 in vma_list_test.cc";
  struct Move {
    uint64_t offset;
    uint64_t len;
    uint64_t from;
    uint64_t to;
  };
  std::vector<Move> moves = {{kBar0Offset, k64K, kVaA, kVaB}};
  if (isG3()) {
    moves.push_back({kBar2Offset, 2 * kGiB, kVaH, kVaH2});             // PUD leaves
    moves.push_back({kBar2Offset + 2 * kMiB, 4 * kMiB, kVaP, kVaP2});  // PMD leaves
  }
  std::vector<std::vector<Leaf>> before;
  std::vector<PgOff> pgoffs;
  for (const Move& m : moves) {
    mapAt(m.offset, m.len, m.from);
    if (m.len == k64K)
      populate(m.from, m.len);
    else
      ASSERT_TRUE(touch(m.from).sig.none());
  }
  for (const Move& m : moves) {
    before.push_back(leafList(m.from, m.len));
    for (const VmaSnapshot& s : vmas())
      if (s.start == VirtAddr(m.from)) pgoffs.push_back(s.pgoff);
  }
  ASSERT_EQ(pgoffs.size(), moves.size());
  if (isG3()) {
    EXPECT_EQ(before[1].front().level, PtLevel::kPud);
    EXPECT_EQ(before[2].front().level, PtLevel::kPmd);
  }
  const CounterSnapshot counted = counters();
  const uint64_t flt = minFlt();
  for (size_t i = 0; i < moves.size(); ++i) {
    const Move& m = moves[i];
    SCOPED_TRACE(i);
    ASSERT_EQ(proc->mremap(m.from, m.len, m.len, mremap::kMayMove | mremap::kFixed, m.to),
              static_cast<long>(m.to));
    EXPECT_TRUE(leafList(m.from, m.len).empty());
    const auto moved = leafList(m.to, m.len);
    ASSERT_EQ(moved.size(), before[i].size());
    for (size_t j = 0; j < moved.size(); ++j) {
      EXPECT_EQ(moved[j].va - m.to, before[i][j].va - m.from);
      EXPECT_EQ(moved[j].level, before[i][j].level);
      EXPECT_EQ(pte::pfnOf(moved[j].entry), pte::pfnOf(before[i][j].entry));
    }
    bool found = false;
    for (const VmaSnapshot& s : vmas())
      if (s.start == VirtAddr(m.to)) {
        found = true;
        EXPECT_EQ(s.pgoff, pgoffs[i]) << "vm_pgoff kept";
      }
    EXPECT_TRUE(found);
    EXPECT_TRUE(touch(m.to).sig.none());
  }
  EXPECT_EQ(minFlt() - flt, 0U) << "nothing refaulted after the moves";
  EXPECT_EQ(since(counted, "mm.thp_split_pmd"), 0U);
  EXPECT_EQ(since(counted, "mm.thp_split_pud"), 0U);
  setMem(false);
  for (const Move& m : moves) {
    EXPECT_EQ(leaves(m.to, m.len).total(), 0U);
    EXPECT_EQ(touch(m.to).sig.signo, SigInfo::kSigbus);
  }
  EXPECT_EQ(violations(), 0U);
}

// ---------------------------------------------------------------------------
// mprotect

TEST_P(ForkSplitMremapTest, MPROT_01_ReadOnlyInPlaceAndBackWithoutAFault) {
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  populate(va, k64K);
  const CounterSnapshot before = counters();
  ASSERT_EQ(proc->mprotect(va, k64K, prot::kRead), 0);
  const auto ro = leafList(va, k64K);
  ASSERT_EQ(ro.size(), 16U) << "entries stay";
  for (const Leaf& l : ro) {
    EXPECT_FALSE(pte::isWritable(l.entry));
    EXPECT_NE(l.entry & pte::kPcd, 0U);
  }
  EXPECT_EQ(since(before, "mm.zap.calls"), 0U) << "no vfio zap";
  const SigInfo s = proc->thread().store(va + 0x100, 1, 4).sig;
  EXPECT_EQ(s.signo, SigInfo::kSigsegv);
  EXPECT_EQ(s.code, SigInfo::kSegvAccerr);
  ASSERT_EQ(proc->mprotect(va, k64K, prot::kRead | prot::kWrite), 0);
  const uint64_t flt = minFlt();
  EXPECT_TRUE(proc->thread().store(va + 0x100, 0x1234, 4).sig.none());
  EXPECT_TRUE(proc->thread().store(va + 0xF100, 0x5678, 4).sig.none());
  EXPECT_EQ(minFlt() - flt, 0U) << "made writable in place";
  for (const Leaf& l : leafList(va, k64K)) {
    EXPECT_TRUE(pte::isWritable(l.entry));
    EXPECT_NE(l.entry & pte::kPcd, 0U) << "still non-cached";
  }
  EXPECT_EQ(proc->thread().load(va + 0x100, 4).value, 0x1234U);
  EXPECT_EQ(since(before, "mm.zap.calls"), 0U);
}

TEST_P(ForkSplitMremapTest, MPROT_02_FourKInsideAPmdLeafClearsItAndSplitsInThree) {
  if (!isG3()) GTEST_SKIP() << "[G3]";
  const uint64_t va = mapAt(kBar2Offset, 4 * kMiB, kVaP);
  ASSERT_TRUE(touch(va).sig.none());
  ASSERT_EQ(translate(va).level, PtLevel::kPmd);
  const CounterSnapshot before = counters();
  ASSERT_EQ(proc->mprotect(va + kMiB, 4 * kKiB, prot::kRead), 0);
  const auto v = vmas();
  ASSERT_EQ(v.size(), 3U);
  EXPECT_EQ(v[0].end, VirtAddr(va + kMiB));
  EXPECT_EQ(v[1].start, VirtAddr(va + kMiB));
  EXPECT_EQ(v[1].end, VirtAddr(va + kMiB + 4 * kKiB));
  EXPECT_EQ(v[2].end, VirtAddr(va + 4 * kMiB));
  EXPECT_EQ(leaves(va, 2 * kMiB).total(), 0U);
  EXPECT_EQ(since(before, "mm.thp_split_pmd"), 1U);
  ASSERT_TRUE(touch(va + kMiB).sig.none());
  EXPECT_EQ(translate(va + kMiB).level, PtLevel::kPte);
  EXPECT_FALSE(pte::isWritable(translate(va + kMiB).entry));
}

// A vfio fd opened read-only cannot be mapped at all: do_mmap() drops
// VM_SHARED, which vfio requires (UAPI-32), so there is no mapping for
// mprotect to upgrade; tests/mm covers MPROT-03 with a file that takes one.
TEST_P(ForkSplitMremapTest, MPROT_03_ReadOnlyFileCannotGainWrite) {
  PciBus& bus = kernel->addBus(0x42);
  auto d2 = kernel->addVfioDevice(bus, standardDeviceConfig(bus.number()));
  ASSERT_TRUE(d2);
  auto other = Process::spawn(*kernel, "other");
  const long ro = other->open(kernel->cdevPath(**d2), O_RDONLY);
  ASSERT_GE(ro, 0);
  const long iommufd = other->open("/dev/iommu", O_RDWR);
  uapi::vfio_device_bind_iommufd bind{.argsz = sizeof(uapi::vfio_device_bind_iommufd)};
  bind.iommufd = static_cast<int32_t>(iommufd);
  ASSERT_EQ(other->ioctl(static_cast<int>(ro), VFIO_DEVICE_BIND_IOMMUFD, &bind), 0);
  EXPECT_EQ(other->mmap(0, k64K, prot::kRead, map::kShared, static_cast<int>(ro), kBar0Offset),
            -22);
  EXPECT_EQ(other->mmap(0, k64K, prot::kRead | prot::kWrite, map::kShared, static_cast<int>(ro),
                        kBar0Offset),
            -13);
  EXPECT_EQ(other->mm().mapCount(), 0U);
}

// ---------------------------------------------------------------------------
// madvise, mlock, mincore, /proc/self/mem

TEST_P(ForkSplitMremapTest, MADV_01_AdviceOnAPfnmapChangesNoEntry) {
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  populate(va, k64K);
  for (int advice : {madv::kDontNeed, madv::kFree, madv::kCold, madv::kPopulateRead})
    EXPECT_EQ(proc->madvise(va, k64K, advice), -22) << advice;
  EXPECT_EQ(proc->madvise(va, k64K, madv::kRemove), -19);
  for (int advice : {madv::kWillNeed, madv::kHugepage, madv::kNoHugepage})
    EXPECT_EQ(proc->madvise(va, k64K, advice), 0) << advice;
  EXPECT_EQ(leaves(va, k64K).pte, 16U);
  const uint64_t flt = minFlt();
  populate(va, k64K);
  EXPECT_EQ(minFlt() - flt, 0U);
}

// madvise_remove()'s refusals, each before the file is asked: VM_LOCKED,
// no file (a shared anonymous mapping has shmem's), and a mapping that may
// not write the file, which v6.7 tells by VM_MAYWRITE where v6.1 asked for
// VM_WRITE. A BAR's file is no regular file: -ENODEV (MADV-01, above).
TEST(MadviseRemoveTest, MADV_01_RefusalsComeBeforeTheFile) {
  for (const char* name : {"linux-6.1", "linux-6.10"}) {
    SCOPED_TRACE(name);
    KernelConfig cfg;
    cfg.profile = name;
    auto kernel = *Kernel::create(cfg);
    auto proc = Process::spawn(*kernel, "qemu");
    const int mfd = static_cast<int>(proc->memfdCreate("ram", 0));
    ASSERT_EQ(proc->ftruncate(mfd, 64 * kKiB), 0);
    const auto mapMemfd = [&](int prot, int flags) {
      return static_cast<uint64_t>(proc->mmap(0, 16 * kKiB, prot, flags, mfd, 0));
    };
    const uint64_t rw = mapMemfd(prot::kRead | prot::kWrite, map::kShared);
    const uint64_t ro = mapMemfd(prot::kRead, map::kShared);
    const uint64_t priv = mapMemfd(prot::kRead | prot::kWrite, map::kPrivate);
    const auto anonMap = [&](int flags) {
      return static_cast<uint64_t>(
          proc->mmap(0, 16 * kKiB, prot::kRead | prot::kWrite, flags | map::kAnonymous, -1, 0));
    };
    const uint64_t anon = anonMap(map::kPrivate);
    const uint64_t sharedAnon = anonMap(map::kShared);
    EXPECT_EQ(proc->madvise(rw, 16 * kKiB, madv::kRemove), 0);
    EXPECT_EQ(proc->madvise(ro, 16 * kKiB, madv::kRemove),
              std::string(name) == "linux-6.1" ? -13 : 0);
    EXPECT_EQ(proc->madvise(priv, 16 * kKiB, madv::kRemove), -13);
    EXPECT_EQ(proc->madvise(anon, 16 * kKiB, madv::kRemove), -22) << "no file";
    EXPECT_EQ(proc->madvise(sharedAnon, 16 * kKiB, madv::kRemove), 0) << "shmem in Linux";
    ASSERT_EQ(proc->mlock(rw, 16 * kKiB), 0);
    EXPECT_EQ(proc->madvise(rw, 16 * kKiB, madv::kRemove), -22) << "VM_LOCKED";
  }
}

TEST_P(ForkSplitMremapTest, MADV_02_DontForkLeavesTheChildNothing) {
  const uint64_t va = mapAt(kBar0Offset, k64K, kVaA);
  populate(va, k64K);
  EXPECT_EQ(proc->madvise(va, k64K, madv::kDontFork), 0);
  EXPECT_EQ(proc->madvise(va, k64K, madv::kWipeOnFork), -22);
  EXPECT_EQ(proc->madvise(va, k64K, madv::kDoFork), -22) << "VM_IO";
  auto child = proc->fork();
  ASSERT_NE(child, nullptr);
  EXPECT_TRUE(vmas(child.get()).empty());
  const SigInfo s = touch(va, child.get()).sig;
  EXPECT_EQ(s.signo, SigInfo::kSigsegv);
  EXPECT_EQ(s.code, SigInfo::kSegvMaperr);
  EXPECT_TRUE(touch(va).sig.none());
}

TEST_P(ForkSplitMremapTest, MADV_03_MlockMincoreAndProcMem) {
  const uint64_t cold = mapAt(kBar0Offset, k64K, kVaA);
  EXPECT_EQ(proc->mlock(cold, k64K), 0);
  EXPECT_EQ(leaves(cold, k64K).total(), 0U) << "mlock populated nothing";
  EXPECT_EQ(vmas()[0].flags & vm::kLocked, 0U);
  const uint64_t hot = mapAt(kBar0Offset, k64K, kVaB);
  populate(hot, k64K);
  std::vector<uint8_t> vec(3, 0xaa);
  EXPECT_EQ(proc->mincore(hot, k64K, &vec), 0);
  EXPECT_EQ(vec, std::vector<uint8_t>(16, 0));
  const long mem = proc->open("/proc/self/mem", O_RDONLY);
  ASSERT_GE(mem, 0);
  uint32_t word = 0;
  EXPECT_EQ(proc->pread(static_cast<int>(mem), &word, 4, hot), -5);
  EXPECT_EQ(proc->pread(static_cast<int>(mem), &word, 4, cold), -5);
}

// MAP_LOCKED and mlock() answer to RLIMIT_MEMLOCK (default 8 MiB) and
// CAP_IPC_LOCK for the whole length, though vfio's VM_SPECIAL VMA is never
// locked: MAP_LOCKED -EPERM with a zero limit, -EAGAIN past it; mlock()
// -ENOMEM past it.
TEST_P(ForkSplitMremapTest, MADV_03_MapLockedAndMlockOfABarAnswerToTheMemlockLimit) {
  const int locked = map::kShared | map::kLocked;
  const int rw = prot::kRead | prot::kWrite;
  EXPECT_EQ(proc->mmap(0, 2 * kGiB, rw, locked, fd, kBar2Offset), -11);
  const long small = proc->mmap(0, k64K, rw, locked, fd, kBar0Offset);
  ASSERT_GT(small, 0) << "16 pages fit in 8 MiB";
  const long big = proc->mmap(0, 2 * kGiB, rw, map::kShared, fd, kBar2Offset);
  ASSERT_GT(big, 0);
  EXPECT_EQ(proc->mlock(static_cast<uint64_t>(big), 2 * kGiB), -12);
  EXPECT_EQ(proc->mlock(static_cast<uint64_t>(small), k64K), 0);

  proc->setCapIpcLock(true);
  EXPECT_EQ(proc->mlock(static_cast<uint64_t>(big), 2 * kGiB), 0);
  EXPECT_GT(proc->mmap(0, 2 * kGiB, rw, locked, fd, kBar2Offset), 0);
  for (const auto& v : vmas()) EXPECT_EQ(v.flags & vm::kLocked, 0U) << "VM_SPECIAL: not locked";
  proc->setCapIpcLock(false);
  proc->setRlimitMemlock(0);
  EXPECT_EQ(proc->mmap(0, k64K, rw, locked, fd, kBar0Offset), -1);
  EXPECT_EQ(proc->mlock(static_cast<uint64_t>(small), k64K), -1);
}

// ---------------------------------------------------------------------------
// Address placement (vfio-bar-mapping.md §14, mm-pfnmap.md §3)

TEST_P(ForkSplitMremapTest, ALIGN_01_PlacementOffIsPageAlignedOnly) {
  for (const char* profile : {"linux-6.1", "linux-6.9", "linux-6.15"}) {
    SCOPED_TRACE(profile);
    boot(GetParam(), profile);
    ASSERT_EQ(kernel->profile().mm.fileThpPlacement, FileThpPlacement::kOff);
    const uint64_t top = premapTop();
    const long va = map(kBar2Offset, 2 * kGiB);
    ASSERT_GT(va, 0);
    const uint64_t a = static_cast<uint64_t>(va);
    EXPECT_EQ(a, top - 2 * kGiB) << "plain top-down";
    EXPECT_EQ(a % kPageSize, 0U);
    EXPECT_NE(a % (2 * kMiB), 0U) << "no 2 MiB guarantee";
  }
}

TEST_P(ForkSplitMremapTest, ALIGN_02_Mm610To612PlaceCongruentToTheFileOffset) {
  for (const char* profile : {"linux-6.10", "linux-6.12.0", "linux-6.12"}) {
    SCOPED_TRACE(profile);
    boot(GetParam(), profile);
    const uint64_t top = premapTop();
    const long va = map(kBar2Offset, 2 * kGiB);
    ASSERT_GT(va, 0);
    const uint64_t a = static_cast<uint64_t>(va);
    EXPECT_EQ((a - kBar2Offset) % (2 * kMiB), 0U) << "congruent to the offset mod 2 MiB";
    EXPECT_NE(a % kGiB, 0U) << "never 1 GiB";
    EXPECT_LE(a + 2 * kGiB, top);
    // 6.12 also wants len to be a multiple of 2 MiB; 6.10/6.11 do not.
    const bool pmdLen = kernel->profile().mm.fileThpPlacement == FileThpPlacement::kPmdLen;
    const long odd = map(kBar2Offset, 2 * kMiB + 4 * kKiB);
    ASSERT_GT(odd, 0);
    const uint64_t o = static_cast<uint64_t>(odd);
    if (pmdLen)
      EXPECT_NE(o % (2 * kMiB), 0U) << "2 MiB + 4 KiB: no alignment";
    else
      EXPECT_EQ(o % (2 * kMiB), 0U) << "any length covering a 2 MiB block";
  }
}

// QEMU >= 9.2 ("vfio/helpers: Align mmaps"): align to the largest power of
// two dividing the size, at most 1 GiB; reserve size + align of PROT_NONE
// anonymous memory, round up, unmap the slack, MAP_FIXED the region.
long qemuAlignedMmap(Process& p, int dfd, uint64_t offset, uint64_t size) {
  const uint64_t align = std::min(size & (~size + 1), kGiB);
  const long base = p.mmap(0, size + align, prot::kNone, map::kPrivate | map::kAnonymous, -1, 0);
  if (base < 0) return base;
  const uint64_t start = static_cast<uint64_t>(base);
  const uint64_t aligned = (start + align - 1) & ~(align - 1);
  const uint64_t end = start + size + align;
  if (aligned > start && p.munmap(start, aligned - start) != 0) return -1;
  if (end > aligned + size && p.munmap(aligned + size, end - aligned - size) != 0) return -1;
  return p.mmap(aligned, size, prot::kRead | prot::kWrite, map::kShared | map::kFixed, dfd, offset);
}

TEST_P(ForkSplitMremapTest, ALIGN_03_QemuAlignsEachMmapItself) {
  premapTop();
  // A device with a 4 MiB BAR2, to map a 3 MiB region of it.
  PciBus& bus = kernel->addBus(0x43);
  PciDeviceConfig cfg = standardDeviceConfig(bus.number());
  cfg.bars[2] = BarSpec{4 * kMiB, BarKind::kMem64, true};
  auto d4 = kernel->addVfioDevice(bus, cfg);
  ASSERT_TRUE(d4);
  VfioDevice* const d = dev;
  const int g = groupFd;
  dev = *d4;
  const int fd4 = openGroupPath(*proc);
  dev = d;
  groupFd = g;

  const struct {
    int fd;
    uint64_t offset;
    uint64_t size;
    uint64_t align;
  } cases[] = {
      {fd, kBar2Offset, 2 * kGiB, kGiB},
      {fd, kBar0Offset, k64K, k64K},
      {fd4, kBar2Offset, 3 * kMiB, kMiB},
  };
  std::vector<uint64_t> placed;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.size);
    const long va = qemuAlignedMmap(*proc, c.fd, c.offset, c.size);
    ASSERT_GT(va, 0);
    const uint64_t a = static_cast<uint64_t>(va);
    EXPECT_EQ(a % c.align, 0U);
    placed.push_back(a);
  }
  // Nothing of the reservations is left: the premap and the three regions.
  const auto v = vmas();
  EXPECT_EQ(v.size(), 4U);
  for (const VmaSnapshot& s : v) EXPECT_NE(s.flags & vm::kPfnmap, 0U);
  ASSERT_TRUE(touch(placed[0]).sig.none());
  ASSERT_TRUE(touch(placed[2] + 2 * kMiB).sig.none());
  if (isG3()) {
    EXPECT_EQ(translate(placed[0]).level, PtLevel::kPud) << "what the 1 GiB alignment buys";
    EXPECT_EQ(translate(placed[0]).pfn, Pfn(kBar2Pfn));
  }
  EXPECT_EQ(translate(placed[2] + 2 * kMiB).pfn,
            Pfn::fromPhys(PhysAddr((*d4)->pdev().barStart(2) + 2 * kMiB)));
}

// [mm 6.10-6.12]; the placement-off profiles (linux-6.9, linux-6.15) for
// contrast: no THP path at all, hint or not.
TEST_P(ForkSplitMremapTest, ALIGN_04_OccupiedHintAndTheNullHintRule) {
  constexpr uint64_t kHint = 0x5000'0000'0000;
  for (const char* profile :
       {"linux-6.9", "linux-6.10", "linux-6.12.0", "linux-6.12", "linux-6.15"}) {
    SCOPED_TRACE(profile);
    boot(GetParam(), profile);
    const uint64_t top = premapTop();
    ASSERT_EQ(map(kBar0Offset, 4 * kKiB, kHint), static_cast<long>(kHint));  // occupy the hint
    const long va =
        proc->mmap(kHint, 2 * kGiB, prot::kRead | prot::kWrite, map::kShared, fd, kBar2Offset);
    ASSERT_GT(va, 0);
    const uint64_t a = static_cast<uint64_t>(va);
    EXPECT_NE(a, kHint);
    const KernelProfile& mm = kernel->profile();
    if (mm.mm.fileThpPlacement == FileThpPlacement::kOff || mm.mm.thpPlacementNeedsNullHint) {
      // Off, or 6.12.5+ where a hint skips THP placement: plain top-down.
      EXPECT_EQ(a, top - 2 * kGiB);
      EXPECT_NE(a % (2 * kMiB), 0U);
    } else {
      EXPECT_EQ((a - kBar2Offset) % (2 * kMiB), 0U);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, ForkSplitMremapTest, ::testing::ValuesIn(allDesigns()),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
