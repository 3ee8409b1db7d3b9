#include "hw/cpu.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "base/byte_units.h"
#include "base/counter.h"
#include "bound_context.h"
#include "hw/machine.h"
#include "mm/address_space.h"
#include "mm/file.h"
#include "mm/mm.h"
#include "mm/pfn_insert.h"
#include "mm/task.h"
#include "mm/vm_flags.h"
#include "mm/vm_operations.h"
#include "mm/vma.h"
#include "sync/sched_hook.h"

namespace vfiomm {
namespace {

constexpr PhysAddr kRamBase(64 * kGiB);
constexpr VirtAddr kUserVa(0x7f00'0000'0000);

uint64_t counter(const char* name) { return CounterSet::current().snapshot().get(name); }

// A process on a machine, with leaves put straight into its page table: the
// CPU only reads the page table, so this is all it needs to run.
class CpuTest : public ::testing::Test {
 protected:
  testing::BoundContext boundContext;  // first: the objects below run on it
  CpuTest() {
    machine.registerRegion(ram);
    task.comm = "cpu_test";
    task.mm = &mm;
    machine.cpu(0).switchTo(&task);
  }
  ~CpuTest() override {
    for (unsigned c = 0; c < machine.cpuCount(); ++c) machine.cpu(c).switchTo(nullptr);
  }

  // A user leaf of `level` for `va`, mapping RAM page `ramPage` onwards.
  void mapLeaf(VirtAddr va, PtLevel level, uint64_t ramPage, bool writable) {
    PageTable::Slot slot;
    ASSERT_EQ(mm.pageTable().slotAt(va, level, true, &slot), PageTable::WalkStatus::kOk);
    const uint64_t prot = pte::kUser | (writable ? pte::kRw : 0);
    slot.entry->store(
        pte::makeLeaf(Pfn::fromPhys(kRamBase) + ramPage, prot, level != PtLevel::kPte),
        std::memory_order_release);
  }
  // What a zap does: clear the leaf, then flush every CPU of the mm.
  void unmapLeaf(VirtAddr va, PtLevel level) {
    PageTable::Slot slot;
    ASSERT_EQ(mm.pageTable().slotAt(va, level, false, &slot), PageTable::WalkStatus::kOk);
    slot.entry->store(0, std::memory_order_release);
    const VirtAddr start = va.alignDown(levelSize(level));
    mm.flushTlbRange(start, start + levelSize(level), levelShift(level), false);
  }

  Machine machine;
  RamRegion ram{"ram", kRamBase, kGiB};
  Mm mm{machine, MmProfile{}};
  Task task;
};

TEST_F(CpuTest, StoreThenLoadReachesRamThroughOneWalk) {
  Cpu& cpu = machine.cpu(0);
  mapLeaf(kUserVa, PtLevel::kPte, 5, true);
  const uint64_t walks = counter("tlb.walk");

  EXPECT_TRUE(cpu.store(kUserVa + 0x18, 8, 0xdead'beef'cafe'f00dULL).sig.none());
  const AccessResult r = cpu.load(kUserVa + 0x18, 8);
  EXPECT_TRUE(r.sig.none());
  EXPECT_EQ(r.value, 0xdead'beef'cafe'f00dULL);
  EXPECT_EQ(cpu.load(kUserVa + 0x1c, 2).value, 0xbeefU);
  EXPECT_EQ(ram.read(5 * kPageSize + 0x18, 8, {}), 0xdead'beef'cafe'f00dULL)
      << "the store landed on RAM page 5";

  EXPECT_EQ(counter("tlb.walk") - walks, 1U) << "only the first access walks";
  EXPECT_EQ(cpu.tlbStats().hits[0].load(), 2U);
  EXPECT_EQ(cpu.tlbStats().fills[0].load(), 1U);
  EXPECT_TRUE(cpu.tlbTranslates(mm.id(), kUserVa));
  EXPECT_EQ(mm.cpumask(), 1U) << "switchTo put CPU 0 in the mm's cpumask";
}

TEST_F(CpuTest, HugeLeavesMapEveryPageOfTheirBlock) {
  Cpu& cpu = machine.cpu(0);
  const VirtAddr pmdVa(0x7f00'4000'0000);
  mapLeaf(pmdVa, PtLevel::kPmd, 512, true);
  const VirtAddr pudVa(0x7f01'0000'0000);
  mapLeaf(pudVa, PtLevel::kPud, 0, false);

  ASSERT_TRUE(cpu.store(pmdVa + 0x1f'f008, 4, 0x1234'5678).sig.none());
  EXPECT_EQ(ram.read(kPmdSize + 0x1f'f008, 4, {}), 0x1234'5678U);
  EXPECT_EQ(cpu.load(pudVa + kPmdSize + 0x1f'f008, 4).value, 0x1234'5678U)
      << "the 1 GiB leaf maps the same RAM from page 0";
  EXPECT_EQ(cpu.tlbStats().fills[1].load(), 1U);
  EXPECT_EQ(cpu.tlbStats().fills[2].load(), 1U);

  // Another page of the same 2 MiB leaf is another frame, whatever memory
  // the entry remembers from the last access.
  ram.write(kPmdSize + 8, 8, 0xabc, {});
  EXPECT_EQ(cpu.load(pmdVa + 8, 8).value, 0xabcU);
  EXPECT_EQ(cpu.load(pmdVa + 0x1f'f008, 4).value, 0x1234'5678U);
  EXPECT_EQ(cpu.tlbStats().fills[1].load(), 1U);
}

TEST_F(CpuTest, AccessWithoutAMappingReturnsTheSignalAndCompletesNothing) {
  Cpu& cpu = machine.cpu(0);
  const AccessResult r = cpu.load(kUserVa, 8);
  EXPECT_EQ(r.sig.signo, SigInfo::kSigsegv);
  EXPECT_EQ(r.sig.code, SigInfo::kSegvMaperr);
  EXPECT_EQ(r.sig.addr, kUserVa);

  // A present read-only leaf: loads work, a store faults and stores nothing.
  mapLeaf(kUserVa, PtLevel::kPte, 9, false);
  ram.write(9 * kPageSize, 8, 77, {});
  EXPECT_EQ(cpu.load(kUserVa, 8).value, 77U);
  EXPECT_EQ(cpu.store(kUserVa, 8, 1).sig.signo, SigInfo::kSigsegv);
  EXPECT_EQ(ram.read(9 * kPageSize, 8, {}), 77U);
  EXPECT_FALSE(cpu.tlbTranslates(mm.id(), kUserVa)) << "the read-only entry was dropped";
}

// Found by fuzz_syscalls: a misaligned or odd-sized access stopped the host
// process with an assertion. It is SIGBUS, BUS_ADRALN, and touches nothing.
TEST_F(CpuTest, FuzzFound_MisalignedAccessIsSigbusAdralnNotAnAbort) {
  Cpu& cpu = machine.cpu(0);
  mapLeaf(kUserVa, PtLevel::kPte, 9, true);
  ram.write(9 * kPageSize, 8, 77, {});
  for (const auto& [offset, size] : {std::pair{1U, 4U}, {2U, 8U}, {0U, 3U}, {0U, 16U}}) {
    const AccessResult r = cpu.store(kUserVa + offset, size, 5);
    EXPECT_EQ(r.sig.signo, SigInfo::kSigbus);
    EXPECT_EQ(r.sig.code, SigInfo::kBusAdraln);
    EXPECT_EQ(cpu.load(kUserVa + offset, size).sig.code, SigInfo::kBusAdraln);
  }
  EXPECT_EQ(ram.read(9 * kPageSize, 8, {}), 77U);
}

TEST_F(CpuTest, AddressesAboveTaskSizeFaultEvenWhenTheirIndicesAliasAMapping) {
  Cpu& cpu = machine.cpu(0);
  mapLeaf(kUserVa, PtLevel::kPte, 1, true);
  ASSERT_TRUE(cpu.load(kUserVa, 8).sig.none());
  // Bit 48 set: the same PGD..PTE indices as kUserVa, but not a user address.
  const VirtAddr alias = kUserVa + (uint64_t{1} << 48);
  const AccessResult r = cpu.load(alias, 8);
  EXPECT_EQ(r.sig.signo, SigInfo::kSigsegv);
  EXPECT_EQ(r.sig.addr, alias);
  EXPECT_EQ(cpu.store(VirtAddr(kTaskSize), 8, 1).sig.signo, SigInfo::kSigsegv);
}

TEST_F(CpuTest, ContextSwitchKeepsEachMmsEntries) {
  Cpu& cpu = machine.cpu(0);
  Mm other(machine, MmProfile{});
  Task otherTask;
  otherTask.mm = &other;
  mapLeaf(kUserVa, PtLevel::kPte, 1, true);
  ASSERT_TRUE(cpu.load(kUserVa, 8).sig.none());

  cpu.switchTo(&otherTask);
  EXPECT_EQ(cpu.load(kUserVa, 8).sig.signo, SigInfo::kSigsegv) << "not mapped in `other`";
  cpu.switchTo(&task);
  const uint64_t walks = counter("tlb.walk");
  EXPECT_TRUE(cpu.load(kUserVa, 8).sig.none());
  EXPECT_EQ(counter("tlb.walk") - walks, 0U) << "the PCID-tagged entry survived the switch";
  EXPECT_EQ(other.cpumask(), 1U);
}

TEST_F(CpuTest, ZapFlushesEveryCpuOfTheMmAndTheNextAccessFaults) {
  for (unsigned c = 0; c < 3; ++c) machine.cpu(c).switchTo(&task);
  mapLeaf(kUserVa, PtLevel::kPte, 3, true);
  for (unsigned c = 0; c < 3; ++c) ASSERT_TRUE(machine.cpu(c).load(kUserVa, 8).sig.none());
  EXPECT_EQ(mm.cpumask(), 0b111U);

  unmapLeaf(kUserVa, PtLevel::kPte);
  for (unsigned c = 0; c < machine.cpuCount(); ++c)
    EXPECT_FALSE(machine.cpu(c).tlbTranslates(mm.id(), kUserVa)) << "ZAP-04, CPU " << c;
  EXPECT_EQ(machine.flushTotals().shootdowns.load(), 3U);
  EXPECT_EQ(machine.cpu(3).tlbStats().pagesFlushed.load(), 0U);
  EXPECT_EQ(machine.cpu(1).load(kUserVa, 8).sig.signo, SigInfo::kSigsegv);
}

TEST_F(CpuTest, UnassignedPhysicalAddressReadsAllOnes) {
  Cpu& cpu = machine.cpu(0);
  PageTable::Slot slot;
  ASSERT_EQ(mm.pageTable().slotAt(kUserVa, PtLevel::kPte, true, &slot), PageTable::WalkStatus::kOk);
  slot.entry->store(pte::makeLeaf(Pfn(0x10), pte::kUser | pte::kRw, false));
  const uint64_t before = counter("hw.phys.unassigned_access");
  EXPECT_EQ(cpu.load(kUserVa, 4).value, 0xffff'ffffU);
  EXPECT_TRUE(cpu.store(kUserVa, 8, 5).sig.none());
  EXPECT_EQ(cpu.load(kUserVa, 8).value, ~uint64_t{0});
  EXPECT_EQ(counter("hw.phys.unassigned_access") - before, 3U);
}

TEST_F(CpuTest, UnregisteredRegionIsNoLongerReachedThroughCachedEntries) {
  Cpu& cpu = machine.cpu(0);
  mapLeaf(kUserVa, PtLevel::kPte, 2, true);
  ASSERT_TRUE(cpu.store(kUserVa, 8, 42).sig.none());
  machine.unregisterRegion(ram);
  EXPECT_TRUE(cpu.tlbTranslates(mm.id(), kUserVa)) << "the translation itself stays";
  EXPECT_EQ(cpu.load(kUserVa, 8).value, ~uint64_t{0});
  machine.registerRegion(ram);
  EXPECT_EQ(cpu.load(kUserVa, 8).value, 42U);
}

// ZAP-04 under contention: CPUs hammer a page while a zapper clears and
// restores it; each time a flush returns, no CPU still translates the page,
// and a CPU never reads anything but what was last stored there.
TEST_F(CpuTest, ConcurrentAccessesNeverOutliveAZap) {
  constexpr unsigned kCpus = 3;
  constexpr int kRounds = 200;
  for (unsigned c = 0; c < kCpus; ++c) machine.cpu(c).switchTo(&task);
  mapLeaf(kUserVa, PtLevel::kPte, 4, true);
  ASSERT_TRUE(machine.cpu(0).store(kUserVa, 8, 7).sig.none());
  std::latch start(kCpus + 1);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> badValues{0};
  std::vector<testing::BoundThread> cpus;
  for (unsigned c = 0; c < kCpus; ++c)
    cpus.emplace_back(boundContext.context(), [&, c] {
      Cpu& cpu = machine.cpu(c);
      start.arrive_and_wait();
      while (!stop.load()) {
        const AccessResult r = cpu.load(kUserVa, 8);
        if (r.sig.none() && r.value != 7) badValues.fetch_add(1);
        if (!r.sig.none() && r.sig.signo != SigInfo::kSigsegv) badValues.fetch_add(1);
      }
    });
  start.arrive_and_wait();
  int stale = 0;
  for (int round = 0; round < kRounds; ++round) {
    unmapLeaf(kUserVa, PtLevel::kPte);
    for (unsigned c = 0; c < kCpus; ++c) stale += machine.cpu(c).tlbTranslates(mm.id(), kUserVa);
    mapLeaf(kUserVa, PtLevel::kPte, 4, true);
  }
  stop = true;
  for (auto& t : cpus) t.join();
  EXPECT_EQ(stale, 0);
  EXPECT_EQ(badValues.load(), 0U);
  EXPECT_EQ(machine.flushTotals().shootdowns.load(), uint64_t{kRounds} * kCpus);
}

// Reports when a thread spins on a CPU lock long enough to give way.
class LockWaitHook : public SchedHook {
 public:
  void spinPoint(std::string_view what) override {
    if (what == "cpu lock") waited.store(true);
  }
  std::atomic<bool> waited{false};
};

// A RAM page whose reads hold the access in flight until released.
class StallingRegion final : public PhysRegion {
 public:
  using PhysRegion::PhysRegion;
  std::latch entered{1};
  std::atomic<bool> release{false};
  std::atomic<bool>* flushed = nullptr;
  bool flushedDuringAccess = false;

 protected:
  uint64_t doRead(uint64_t, unsigned, const AccessInfo&) override {
    entered.count_down();
    while (!release.load()) std::this_thread::yield();
    flushedDuringAccess = flushed->load();
    return 1;
  }
  void doWrite(uint64_t, unsigned, uint64_t, const AccessInfo&) override {}
};

TEST_F(CpuTest, ShootdownWaitsForTheAccessInFlight) {
  StallingRegion device("stall", PhysAddr(128 * kGiB), kPageSize);
  std::atomic<bool> flushed{false};
  device.flushed = &flushed;
  machine.registerRegion(device);
  PageTable::Slot slot;
  ASSERT_EQ(mm.pageTable().slotAt(kUserVa, PtLevel::kPte, true, &slot), PageTable::WalkStatus::kOk);
  slot.entry->store(pte::makeLeaf(device.firstPfn(), pte::kUser, false));

  LockWaitHook hook;
  SchedHook* previous = setSchedHook(&hook);
  testing::BoundThread accessor(boundContext.context(),
                                [&] { EXPECT_EQ(machine.cpu(0).load(kUserVa, 8).value, 1U); });
  device.entered.wait();
  testing::BoundThread zapper(boundContext.context(), [&] {
    unmapLeaf(kUserVa, PtLevel::kPte);
    flushed.store(true);
  });
  while (!hook.waited.load()) std::this_thread::yield();  // the zapper is stuck on CPU 0's lock
  device.release.store(true);
  accessor.join();
  zapper.join();
  setSchedHook(previous);

  EXPECT_FALSE(device.flushedDuringAccess);
  EXPECT_FALSE(machine.cpu(0).tlbTranslates(mm.id(), kUserVa));
  machine.unregisterRegion(device);
}

TEST(CpuLockTest, ZAP_04_TheOwnSideWaitsForAnotherSidesTurn) {
  testing::BoundContext bound;
  CpuLock lock;
  LockWaitHook hook;
  SchedHook* previous = setSchedHook(&hook);
  std::atomic<bool> otherDone{false};
  bool ownSawOtherDone = false;
  lock.lock(CpuLock::Side::kOther);
  testing::BoundThread own(bound.context(), [&] {
    lock.lock(CpuLock::Side::kOwn);
    ownSawOtherDone = otherDone.load();
    lock.unlock(CpuLock::Side::kOwn);
  });
  while (!hook.waited.load()) std::this_thread::yield();  // the own side spins
  otherDone.store(true);
  lock.unlock(CpuLock::Side::kOther);
  own.join();
  setSchedHook(previous);
  EXPECT_TRUE(ownSawOtherDone);
}

TEST(CpuLockTest, ZAP_04_BothSidesExcludeEachOther) {
  // Each side increments a shared count with a load and a store (no
  // read-modify-write) under the lock, the own side for as long as the
  // other one takes it: an overlap of the two sides, such as a missing
  // barrier between a side's store and its load, loses increments. Where
  // membarrier works, the other side waits for the own side to drop its
  // exchange before each take, so that every take pays the membarrier.
  constexpr uint64_t kOtherTakes = 200;
  testing::BoundContext bound;
  CpuLock lock;
  const bool asymmetric = CpuLock::asymmetric();
  std::atomic<uint64_t> count{0};
  std::atomic<bool> otherDone{false};
  std::latch start(2);
  const auto increment = [&] {
    count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  };
  uint64_t ownTakes = 0;
  testing::BoundThread own(bound.context(), [&] {
    start.arrive_and_wait();
    while (!otherDone.load(std::memory_order_relaxed)) {
      lock.lock(CpuLock::Side::kOwn);
      increment();
      lock.unlock(CpuLock::Side::kOwn);
      ++ownTakes;
    }
  });
  start.arrive_and_wait();
  for (uint64_t i = 0; i < kOtherTakes; ++i) {
    while (asymmetric && !lock.ownSideUnfenced()) std::this_thread::yield();
    lock.lock(CpuLock::Side::kOther);
    increment();
    lock.unlock(CpuLock::Side::kOther);
  }
  otherDone.store(true);
  own.join();
  EXPECT_EQ(count.load(), ownTakes + kOtherTakes);
}

TEST(CpuLockTest, TheOwnSideFencesFirstAndAfterAnotherSidesTurnForAFixedNumberOfTakes) {
  CpuLock lock;
  // Without membarrier the own side is always fenced.
  const bool asymmetric = CpuLock::asymmetric();
  const auto ownTakes = [&lock](unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      lock.lock(CpuLock::Side::kOwn);
      lock.unlock(CpuLock::Side::kOwn);
    }
  };
  // Round 0: a new lock is fenced for as many takes as after another
  // side's turn; round 1: after such a turn.
  for (int round = 0; round < 2; ++round) {
    ownTakes(CpuLock::kFencedTakes - 1);
    EXPECT_FALSE(lock.ownSideUnfenced()) << "round " << round;
    ownTakes(1);
    EXPECT_EQ(lock.ownSideUnfenced(), asymmetric) << "round " << round;
    // A take by another side while the own side is unfenced fences it again.
    lock.lock(CpuLock::Side::kOther);
    lock.unlock(CpuLock::Side::kOther);
    EXPECT_FALSE(lock.ownSideUnfenced()) << "round " << round;
  }
}

// A device file whose fault handler maps RAM pages from `base` on, one 4 KiB
// special PTE per fault, as the address-space design does with a BAR.
class FakeBarOps final : public VmOperations {
 public:
  explicit FakeBarOps(Pfn base) : base_(base) {}
  bool hasFault() const override { return true; }
  VmFaultResult fault(VmFault& vmf) const override {
    return vmfInsertPfn(*vmf.vma, vmf.address, base_ + vmf.pgoff.value());
  }
  std::string_view name() const override { return "fake_bar"; }

 private:
  Pfn base_;
};

class FakeBarFile final : public File {
 public:
  explicit FakeBarFile(Pfn base) : ops_(base) {}
  AddressSpace* mapping() const override { return &mapping_; }
  Status mmap(Vma& vma) override {
    vma.initFlags(vma.flags() | vm::kIo | vm::kPfnmap | vm::kDontExpand | vm::kDontDump);
    vma.setOps(&ops_);
    return ok();
  }

 private:
  mutable AddressSpace mapping_;
  FakeBarOps ops_;
};

TEST_F(CpuTest, DeviceMappingFaultsInAndEveryZapReachesTheTlb) {
  auto file = std::make_shared<FakeBarFile>(Pfn::fromPhys(kRamBase) + 16);
  const Result<VirtAddr> addr =
      mm.mmap(VirtAddr(0), 4 * kPageSize, prot::kRead | prot::kWrite, map::kShared, file, 0);
  ASSERT_TRUE(addr.has_value());
  const VirtAddr va = *addr + kPageSize + 8;
  Cpu& cpu = machine.cpu(0);

  EXPECT_TRUE(cpu.store(va, 8, 99).sig.none()) << "faulted in, then retried";
  EXPECT_EQ(ram.read(17 * kPageSize + 8, 8, {}), 99U);
  EXPECT_TRUE(cpu.tlbTranslates(mm.id(), va));

  file->mapping()->unmapMappingRange(0, 0, true);
  EXPECT_FALSE(cpu.tlbTranslates(mm.id(), va));
  EXPECT_EQ(cpu.load(va, 8).value, 99U) << "a zapped page faults back in";

  ASSERT_TRUE(mm.munmap(*addr, 4 * kPageSize).has_value());
  EXPECT_FALSE(cpu.tlbTranslates(mm.id(), va));
  EXPECT_EQ(cpu.load(va, 8).sig.signo, SigInfo::kSigsegv);
}

}  // namespace
}  // namespace vfiomm
