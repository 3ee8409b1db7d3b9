// Faults, huge faults, fault accounting and the locking around them
// (conformance.md FAULT, HUGE, ACCT, LOCK). Every item runs against the
// designs its bracket names; where the expected value depends on the design
// (or, for G3, on the g3_variant switch) each one gets its own.
//
// Concurrency is scripted, never timed: a ScriptHook (the scheduling hook of
// src/sync/sched_hook.h) stops a thread the moment it is about to take a
// given lock, or reports that it blocked on one, and the test releases it
// when the other side is in place.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <latch>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/byte_units.h"
#include "hw/page_table_arena.h"
#include "mm/address_space.h"
#include "mm/fault.h"
#include "mm/pfn_insert.h"
#include "sync/sched_hook.h"
#include "vfio/design/vma_list_tracking.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

// Setup H: BAR2 (2 GiB) at a 1 GiB-aligned VA.
constexpr uint64_t kVaH = 0x7f00'0000'0000;
// 2 MiB aligned but not 1 GiB aligned: no 1 GiB block of BAR2 fits there
// with an aligned pfn, so order 18 always falls back.
constexpr uint64_t kVa2M = 0x7f00'0020'0000;
constexpr uint64_t kBar0Len = 64 * kKiB;
constexpr uint64_t kH = 2 * kGiB;
constexpr uint64_t kHPages = kH / kPageSize;  // 524,288
constexpr Pfn kBar0Pfn{0xF0000};
constexpr Pfn kBar2Pfn{0x400'0000};

// --- counters ---------------------------------------------------------------

class Counters {
 public:
  Counters() : before_(CounterSet::current().snapshot()) {}
  uint64_t operator()(std::string_view name) const {
    return CounterSet::current().snapshot().since(before_).get(name);
  }

 private:
  CounterSnapshot before_;
};

// --- scripted interleavings ---------------------------------------------------

// The role the calling thread plays in a script (0: none).
thread_local int tRole = 0;

class ScriptHook : public SchedHook {
 public:
  enum class When {
    kBeforeAcquire,  // about to take `lock` (it may block next)
    kAfterAcquire,   // about to take the next lock after having taken `lock`
    kBlocked,        // failed to take `lock` and is going to sleep on it
  };
  struct Point {
    Point(int r, const void* l, When w, bool p) : role(r), lock(l), when(w), pause(p) {}
    const int role;
    const void* const lock;
    const When when;
    const bool pause;  // stop there until resume()
    std::latch reached{1};
    std::latch resumed{1};
    std::atomic<bool> armed{false};
    std::atomic<bool> fired{false};
    std::atomic<bool> released{false};
    // What the thread held when it got there (lockdep's view).
    std::vector<const LockClass*> held;
    // Run by the thread when it gets there (before pausing).
    std::function<void()> onFire;
    void resume() {
      if (!released.exchange(true)) resumed.count_down();
    }
  };

  // Installed once fully built, so no thread can see a half-made hook.
  ScriptHook() { previous_ = setSchedHook(this); }
  ~ScriptHook() override {
    for (auto& p : points_) p->resume();
    setSchedHook(previous_);
  }
  ScriptHook(const ScriptHook&) = delete;
  ScriptHook& operator=(const ScriptHook&) = delete;

  // Points are added before any scripted thread runs.
  Point& at(int role, const void* lock, When when, bool pause) {
    points_.push_back(std::make_unique<Point>(role, lock, when, pause));
    return *points_.back();
  }

  void beforeAcquire(const void* lock) override {
    for (auto& p : points_) {
      if (p->role != tRole || p->fired.load()) continue;
      if (p->when == When::kBeforeAcquire && lock == p->lock) {
        fire(*p);
      } else if (p->when == When::kAfterAcquire) {
        if (p->armed.load())
          fire(*p);
        else if (lock == p->lock)
          p->armed.store(true);
      }
    }
  }
  void wait(const void* lock, const std::atomic<uint32_t>& word, uint32_t observed) override {
    for (auto& p : points_)
      if (p->role == tRole && p->when == When::kBlocked && lock == p->lock && !p->fired.load())
        fire(*p);
    SchedHook::wait(lock, word, observed);
  }

 private:
  static void fire(Point& p) {
    if (p.fired.exchange(true)) return;
    for (const lockdep::HeldLock& h : lockdep::heldLocks()) p.held.push_back(h.cls);
    if (p.onFire) p.onFire();
    p.reached.count_down();
    if (p.pause) p.resumed.wait();
  }

  SchedHook* previous_ = nullptr;
  std::vector<std::unique_ptr<Point>> points_;
};

bool holds(const std::vector<const LockClass*>& held, const LockClass& cls) {
  for (const LockClass* c : held)
    if (c == &cls) return true;
  return false;
}

// Leaves lockdep on or off for one scope (only where no lock is held).
class LockdepSetting {
 public:
  explicit LockdepSetting(bool on) : was_(lockdep::enabled()) { lockdep::setEnabled(on); }
  ~LockdepSetting() { lockdep::setEnabled(was_); }
  LockdepSetting(const LockdepSetting&) = delete;
  LockdepSetting& operator=(const LockdepSetting&) = delete;

 private:
  bool was_;
};

// --- the fixture ----------------------------------------------------------------

KernelProfile named(std::string_view name) { return *KernelProfile::byName(name); }

// The huge-fault design under each fallback variant: G3.0 = 6.12.0, G3.1 =
// 6.12.10-6.12.28 (still with the THP sysfs gate of 6.12.0), G3.2 = 6.12.115+.
KernelProfile g3Profile(G3Variant v) {
  if (v == G3Variant::kG3_2) return named("linux-6.12");
  KernelProfile p = named("linux-6.12.0");
  p.vfio.g3Variant = v;
  p.name = v == G3Variant::kG3_1 ? "linux-6.12.0+g3.1" : p.name;
  return p;
}

const char* variantName(G3Variant v) {
  switch (v) {
    case G3Variant::kG3_0: return "G3.0";
    case G3Variant::kG3_1: return "G3.1";
    case G3Variant::kG3_2: return "G3.2";
  }
  return "?";
}

constexpr G3Variant kVariants[] = {G3Variant::kG3_0, G3Variant::kG3_1, G3Variant::kG3_2};

class FaultHugeTest : public VfioTest {
 protected:
  // mmap(MAP_SHARED|MAP_FIXED) of the device at `va`.
  uint64_t mapAt(uint64_t va, uint64_t offset, uint64_t len) {
    const long r = map(offset, len, va);
    EXPECT_EQ(r, static_cast<long>(va));
    return va;
  }
  uint64_t mapBar0() {
    const long r = map(kBar0Offset, kBar0Len);
    EXPECT_GT(r, 0);
    return static_cast<uint64_t>(r);
  }

  bool isPrefault() const { return design() == DesignKind::kPrefault; }
  // Designs whose first fault fills the whole VMA.
  bool fillsVma() const {
    return design() == DesignKind::kVmaList || design() == DesignKind::kFillVma || isPrefault();
  }
  VmaListTracking& g1() { return static_cast<VmaListTracking&>(dev->pci().design().tracking()); }
  RwSemaphore& memoryLock() { return dev->pci().memoryLock(); }

  // handle_mm_fault() on `va` under the mmap lock held for read, as the
  // second attempt of do_user_addr_fault() makes it: the handler's result.
  VmFaultResult handleFault(uint64_t va, Task& task) {
    Mm& mm = proc->mm();
    ReadGuard mmap(mm.mmapLock());
    Vma* vma = mm.findVma(VirtAddr(va));
    if (vma == nullptr) return vmfault::kSigsegv;
    return handleMmFault(task, *vma, VirtAddr(va),
                         faultflag::kAllowRetry | faultflag::kKillable | faultflag::kUser, true);
  }

  // vfio_iommu_type1's vaddr_get_pfns() over [va, va+len): every page that
  // follow_pfnmap_start() cannot find yet is faulted in with
  // fixup_user_fault(). Returns the number of failed fixups.
  uint64_t dmaMapWalk(uint64_t va, uint64_t len) {
    uint64_t failures = 0;
    for (uint64_t a = va; a < va + len; a += kPageSize) {
      if (translate(a).present) continue;
      if (!fixupUserFault(proc->thread().task(), proc->mm(), VirtAddr(a), faultflag::kWrite))
        ++failures;
    }
    return failures;
  }

  // One load of every 4 KiB page in [va, va+len); returns how many got a signal.
  uint64_t walk(uint64_t va, uint64_t len) {
    uint64_t signals = 0;
    for (uint64_t a = va; a < va + len; a += kPageSize)
      if (touch(a).sig.signo != 0) ++signals;
    return signals;
  }

  uint64_t tables(PtLevel level) { return proc->mm().pageTable().tablePages(level); }
  uint16_t pmOffset() { return static_cast<uint16_t>(*dev->pdev().pmCapOffset() + kPciPmCtrl); }
  long feature(uint32_t which) {
    vfio_device_feature f{.argsz = sizeof(vfio_device_feature)};
    f.flags = VFIO_DEVICE_FEATURE_SET | which;
    return proc->ioctl(fd, VFIO_DEVICE_FEATURE, &f);
  }
};

std::vector<DesignKind> only(std::initializer_list<DesignKind> kinds) { return kinds; }

// ============================================================================
// FAULT
// ============================================================================

using FaultTest = FaultHugeTest;

TEST_P(FaultTest, FAULT_01_FirstReadIsServedWithASpecialLeaf) {
  // The handler's own result, through handle_mm_fault.
  const uint64_t a = mapBar0();
  EXPECT_EQ(handleFault(a, proc->thread().task()), vmfault::kNoPage);
  const PageTable::Translation ta = translate(a);
  EXPECT_TRUE(ta.present);
  EXPECT_EQ(ta.level, PtLevel::kPte);
  EXPECT_TRUE(pte::isSpecial(ta.entry));
  EXPECT_EQ(ta.pfn, kBar0Pfn);
  // And through a CPU: the first byte of another mapping.
  const uint64_t b = mapBar0();
  ASSERT_EQ(proc->pwrite(fd, "\x5a", 1, kBar0Offset), 1);
  const Counters c;
  const AccessResult r = proc->thread().load(b, 1);
  EXPECT_TRUE(r.sig.none());
  EXPECT_EQ(r.value, 0x5aU);
  EXPECT_EQ(c("vmstat.pgfault"), 1U);
  const PageTable::Translation tb = translate(b);
  EXPECT_TRUE(tb.present);
  EXPECT_TRUE(pte::isSpecial(tb.entry));
  EXPECT_EQ(tb.pfn, kBar0Pfn);
}

TEST_P(FaultTest, FAULT_02_MemoryDisabledIsSigbusAndInstallsNothing) {
  const uint64_t va = mapBar0();
  setMem(false);
  const Counters c;
  const AccessResult r = touch(va + 0x3000);
  EXPECT_EQ(r.sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(r.sig.code, SigInfo::kBusAdrerr);
  EXPECT_EQ(r.sig.addr, VirtAddr(va + 0x3000));
  EXPECT_EQ(leaves(va, kBar0Len).total(), 0U);
  EXPECT_EQ(c("mm.fault.sigbus"), 1U);
  EXPECT_EQ(handleFault(va, proc->thread().task()), vmfault::kSigbus);
  EXPECT_EQ(leaves(va, kBar0Len).total(), 0U);
}

TEST_P(FaultTest, FAULT_10_PowerStateAndLowPowerGateFaults) {
  const uint64_t va = mapBar0();
  ASSERT_TRUE(touch(va).sig.none());
  // D3hot zaps and refuses; D0 serves again.
  ASSERT_EQ(configWrite(pmOffset(), 3, 2), 2);
  EXPECT_EQ(leaves(va, kBar0Len).total(), 0U);
  EXPECT_EQ(touch(va).sig.signo, SigInfo::kSigbus);
  ASSERT_EQ(configWrite(pmOffset(), 0, 2), 2);
  EXPECT_TRUE(touch(va).sig.none());
  EXPECT_TRUE(translate(va).present);
  // [mm >= 6.0] user-requested low power: SIGBUS although MEM=1.
  ASSERT_EQ(feature(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), 0);
  EXPECT_NE(configRead(kPciCommand, 2) & kPciCommandMemory, 0U);
  EXPECT_EQ(leaves(va, kBar0Len).total(), 0U);
  EXPECT_EQ(touch(va).sig.signo, SigInfo::kSigbus);
  ASSERT_EQ(feature(VFIO_DEVICE_FEATURE_LOW_POWER_EXIT), 0);
  EXPECT_TRUE(touch(va).sig.none());
  EXPECT_EQ(kernel->pciHost().decodeViolationCount(), 0U);
}

TEST_P(FaultTest, FAULT_11_NoCommandMemoryDeviceIgnoresVirtualMem) {
  // A VF: its decode belongs to the PF, so the virtual MEM bit does not gate.
  PciBus& bus = kernel->addBus(0x40);
  PciDeviceConfig cfg = standardDeviceConfig(bus.number());
  cfg.noCommandMemory = true;
  cfg.bars[4].reset();  // a VF has no I/O BAR
  ResourcePlacement at = standardDevicePlacement();
  at.bars[0] = 0xF002'0000;
  at.bars[1] = 0xF003'0000;
  at.bars[2] = 0x41'0000'0000;
  auto vf = kernel->addVfioDevice(bus, cfg, at);
  ASSERT_TRUE(vf) << errnoName(vf.error());
  dev = *vf;
  fd = openGroupPath(*proc);
  const uint64_t va = mapBar0();
  setMem(false);
  EXPECT_EQ(configRead(kPciCommand, 2) & kPciCommandMemory, 0U);
  const AccessResult r = touch(va + 0x1000);
  EXPECT_TRUE(r.sig.none());
  EXPECT_EQ(translate(va + 0x1000).pfn, Pfn(0xF0021));
  EXPECT_EQ(kernel->pciHost().decodeViolationCount(), 0U);
}

TEST_P(FaultTest, FAULT_12_StoreToReadOnlyMappingIsSegvWithoutTheHandler) {
  const long r = map(kBar0Offset, kBar0Len, 0, prot::kRead);
  ASSERT_GT(r, 0);
  const auto va = static_cast<uint64_t>(r);
  const Counters c;
  const AccessResult st = proc->thread().store(va, 1, 4);
  EXPECT_EQ(st.sig.signo, SigInfo::kSigsegv);
  EXPECT_EQ(st.sig.code, SigInfo::kSegvAccerr);
  EXPECT_EQ(c("mm.fault.fault"), 0U);
  EXPECT_EQ(c("mm.fault.huge_fault.pud") + c("mm.fault.huge_fault.pmd"), 0U);
  EXPECT_EQ(c("vmstat.pgfault"), 0U);
  EXPECT_EQ(leaves(va, kBar0Len).total(), 0U);
  // Reading it is fine.
  EXPECT_TRUE(touch(va).sig.none());
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, FaultTest, ::testing::ValuesIn(allDesigns()), designParamName);

// --- [G1] --------------------------------------------------------------------

using FaultG1Test = FaultHugeTest;

TEST_P(FaultG1Test, FAULT_03_G1FillsWholeVma) {
  const uint64_t va = mapBar0();
  const Counters c;
  const uint64_t before = minFlt();
  ASSERT_TRUE(touch(va + 0x5000).sig.none());
  EXPECT_EQ(minFlt() - before, 1U);
  EXPECT_EQ(c("vmstat.pgfault"), 1U);
  const LeafCounts l = leaves(va, kBar0Len);
  EXPECT_EQ(l.pte, 16U);
  EXPECT_EQ(l.total(), 16U);
  EXPECT_EQ(translate(va + 0xF000).pfn, kBar0Pfn + 0xF);
  EXPECT_EQ(g1().listLength(), 1U);
  EXPECT_EQ(c("vfio.vma_list.fills"), 1U);
  // The rest of the VMA takes no fault.
  EXPECT_EQ(walk(va, kBar0Len), 0U);
  EXPECT_EQ(minFlt() - before, 1U);
}

TEST_P(FaultG1Test, FAULT_04_ConcurrentFaultsOnOneVmaFillItOnce) {
  const uint64_t va = mapBar0();
  Thread& ta = *proc->addThread(1);
  Thread& tb = *proc->addThread(2);
  const Counters c;
  AccessResult ra;
  AccessResult rb;
  {
    ScriptHook hook;
    // A stops inside the handler holding vma_lock (just before memory_lock);
    // B is let go until it is about to take vma_lock, so both passed the
    // "PTE is none" check before anything was filled.
    ScriptHook::Point& aIn = hook.at(1, &memoryLock(), ScriptHook::When::kBeforeAcquire, true);
    ScriptHook::Point& bAt = hook.at(2, &g1().vmaLock(), ScriptHook::When::kBeforeAcquire, false);
    std::thread a([&] {
      tRole = 1;
      ra = ta.load(va + 0x1000);
    });
    aIn.reached.wait();
    std::thread b([&] {
      tRole = 2;
      rb = tb.load(va + 0x2000);
    });
    bAt.reached.wait();
    EXPECT_EQ(leaves(va, kBar0Len).total(), 0U);
    aIn.resume();
    a.join();
    b.join();
  }
  EXPECT_TRUE(ra.sig.none());
  EXPECT_TRUE(rb.sig.none());
  // Both ran the handler; one filled, the other found the VMA listed.
  EXPECT_EQ(c("mm.fault.fault"), 2U);
  EXPECT_EQ(c("vfio.vma_list.fills"), 1U);
  EXPECT_EQ(ta.task().minFlt.load(), 1U);
  EXPECT_EQ(tb.task().minFlt.load(), 1U);
  EXPECT_EQ(g1().listLength(), 1U);
  EXPECT_EQ(leaves(va, kBar0Len).pte, 16U);
  EXPECT_EQ(c("mm.pfn_insert.pte"), 16U);
}

TEST_P(FaultG1Test, FAULT_05_FillTripsTheMmapLockWriteAssertion) {
  struct Case {
    const char* what;
    KernelProfile profile;
    bool lockdepOn;
    size_t reports;
  };
  KernelProfile always = named("linux-6.9");
  always.mm.vmFlagsWriteAssert = VmFlagsWriteAssert::kAlways;  // the 6.10-rc1 mm
  const Case cases[] = {
      {"linux-6.9 with lockdep: one lockdep report", named("linux-6.9"), true, 1},
      {"linux-6.9 without lockdep: nothing (mm < 6.10)", named("linux-6.9"), false, 0},
      {"6.10-rc1 mm without lockdep: one WARN", always, false, 1},
      {"6.10-rc1 mm with lockdep: one report", always, true, 1},
      {"linux-6.1 (mm < 6.3) even with lockdep: nothing", named("linux-6.1"), true, 0},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    bootProfile(DesignKind::kVmaList, k.profile);
    const uint64_t va = mapBar0();
    const uint64_t other = mapBar0();
    {
      LockdepSetting setting(k.lockdepOn);
      lockdep::clearReports();
      ASSERT_TRUE(touch(va).sig.none());
      EXPECT_EQ(leaves(va, kBar0Len).pte, 16U);
      EXPECT_EQ(lockdep::reportCount(lockdep::ReportKind::kAssertHeldWrite), k.reports);
      EXPECT_EQ(lockdep::reportCount(), k.reports);
      if (k.reports != 0) {
        ASSERT_FALSE(lockdep::reports().empty());
        EXPECT_EQ(lockdep::reports().front().lockClass, kMmapLockClass.name());
      }
      // Touching the filled VMA again fills nothing and asserts nothing.
      EXPECT_EQ(walk(va, kBar0Len), 0U);
      EXPECT_EQ(lockdep::reportCount(), k.reports);
      // Each filling fault asserts once.
      ASSERT_TRUE(touch(other).sig.none());
      EXPECT_EQ(lockdep::reportCount(lockdep::ReportKind::kAssertHeldWrite), 2 * k.reports);
    }
    lockdep::clearReports();
  }
}

// The splat names the task that faulted and the CPU it ran on, as the
// kernel's "CPU: n PID: p Comm: c" lines do; a syscall runs on no CPU.
TEST_P(FaultG1Test, FAULT_05_TheSplatNamesTheFaultingTaskAndCpu) {
  bootProfile(DesignKind::kVmaList, named("linux-6.9"));
  const uint64_t va = mapBar0();
  Thread* vcpu = proc->addThread(1);
  ASSERT_NE(vcpu, nullptr);
  LockdepSetting setting(true);
  lockdep::clearReports();
  ASSERT_TRUE(vcpu->load(va).sig.none());
  ASSERT_EQ(lockdep::reportCount(), 1U);
  const std::string text = lockdep::reports().front().text;
  EXPECT_NE(text.find(fmt::format("CPU: 1 PID: {} Comm: qemu", vcpu->task().tid)),
            std::string::npos)
      << text;
  lockdep::clearReports();
}

INSTANTIATE_TEST_SUITE_P(G1, FaultG1Test, ::testing::ValuesIn(only({DesignKind::kVmaList})),
                         designParamName);

// --- [G2s] -------------------------------------------------------------------

using FaultG2sTest = FaultHugeTest;

TEST_P(FaultG2sTest, FAULT_06_G2sMapsOnePagePerFault) {
  const uint64_t va = mapBar0();
  const uint64_t before = minFlt();
  ASSERT_TRUE(touch(va + 0x5000).sig.none());
  EXPECT_EQ(minFlt() - before, 1U);
  const LeafCounts one = leaves(va, kBar0Len);
  EXPECT_EQ(one.pte, 1U);
  EXPECT_EQ(one.total(), 1U);
  EXPECT_TRUE(translate(va + 0x5000).present);
  EXPECT_EQ(translate(va + 0x5000).pfn, kBar0Pfn + 5);
  EXPECT_FALSE(translate(va + 0x4000).present);
  // Every other page takes its own fault.
  EXPECT_EQ(walk(va, kBar0Len), 0U);
  EXPECT_EQ(minFlt() - before, 16U);
  EXPECT_EQ(leaves(va, kBar0Len).pte, 16U);
}

INSTANTIATE_TEST_SUITE_P(G2s, FaultG2sTest, ::testing::ValuesIn(only({DesignKind::kAddressSpace})),
                         designParamName);

// --- [G2] --------------------------------------------------------------------

using FaultG2Test = FaultHugeTest;

TEST_P(FaultG2Test, FAULT_08_G2PrefaultsOnlyTheFaultingVma) {
  const uint64_t va = mapBar0();
  const uint64_t second = mapBar0();
  const uint64_t before = minFlt();
  ASSERT_TRUE(touch(va + 0x7000).sig.none());
  EXPECT_EQ(minFlt() - before, 1U);
  EXPECT_EQ(leaves(va, kBar0Len).pte, 16U);
  for (uint64_t p = 0; p < 16; ++p) EXPECT_EQ(translate(va + p * kPageSize).pfn, kBar0Pfn + p);
  EXPECT_EQ(walk(va, kBar0Len), 0U);
  EXPECT_EQ(minFlt() - before, 1U);
  EXPECT_EQ(leaves(second, kBar0Len).total(), 0U);
}

TEST_P(FaultG2Test, FAULT_09_PrefaultStopsQuietlyWhenATableCannotBeAllocated) {
  // The VMA straddles a 2 MiB boundary: its upper 8 pages need a second PTE
  // table, and every PTE-table allocation after the first fails.
  const uint64_t boundary = kVa2M;
  const uint64_t va = mapAt(boundary - 32 * kKiB, kBar0Offset, kBar0Len);
  auto allocations = std::make_shared<int>(0);
  proc->mm().pageTable().setAllocFailure(
      [allocations](PtLevel level) { return level == PtLevel::kPte && (*allocations)++ >= 1; });
  const Counters c;
  const uint64_t before = minFlt();
  const AccessResult r = touch(va + 0x3000);
  EXPECT_TRUE(r.sig.none());  // the faulting page's own NOPAGE
  EXPECT_EQ(minFlt() - before, 1U);
  EXPECT_EQ(c("mm.fault.sigbus"), 0U);
  EXPECT_EQ(leaves(va, 32 * kKiB).pte, 8U);  // below the boundary, before and after the page
  EXPECT_EQ(leaves(boundary, 32 * kKiB).total(), 0U);
  EXPECT_EQ(c("mm.pfn_insert.pte"), 8U);
  EXPECT_EQ(*allocations, 2);  // one table, then one failed attempt that ended the prefault
  // Once tables can be had again the next fault there fills the rest.
  proc->mm().pageTable().setAllocFailure(nullptr);
  ASSERT_TRUE(touch(boundary + 0x1000).sig.none());
  EXPECT_EQ(minFlt() - before, 2U);
  EXPECT_EQ(leaves(va, kBar0Len).pte, 16U);
  EXPECT_EQ(translate(boundary).pfn, kBar0Pfn + 8);
}

INSTANTIATE_TEST_SUITE_P(G2, FaultG2Test, ::testing::ValuesIn(only({DesignKind::kFillVma})),
                         designParamName);

// --- [G2+] -------------------------------------------------------------------

using FaultG2PlusTest = FaultHugeTest;

TEST_P(FaultG2PlusTest, FAULT_07_ConcurrentFaultsOnOnePageInstallOneEntry) {
  const uint64_t va = mapBar0();
  const uint64_t page = va + 0x4000;
  Thread& ta = *proc->addThread(1);
  Thread& tb = *proc->addThread(2);
  const Counters c;
  AccessResult ra;
  AccessResult rb;
  {
    ScriptHook hook;
    // A stops inside the handler before memory_lock, past the mm's "PTE is
    // none" check; B then faults the same page all the way through.
    ScriptHook::Point& aIn = hook.at(1, &memoryLock(), ScriptHook::When::kBeforeAcquire, true);
    std::thread a([&] {
      tRole = 1;
      ra = ta.load(page);
    });
    aIn.reached.wait();
    std::thread b([&] {
      tRole = 2;
      rb = tb.load(page);
    });
    b.join();
    EXPECT_TRUE(translate(page).present);
    aIn.resume();
    a.join();
  }
  EXPECT_TRUE(ra.sig.none());
  EXPECT_TRUE(rb.sig.none());
  EXPECT_EQ(c("mm.fault.fault"), 2U);  // both called the handler
  EXPECT_EQ(c("mm.fault.sigbus"), 0U);
  EXPECT_EQ(ta.task().minFlt.load(), 1U);
  EXPECT_EQ(tb.task().minFlt.load(), 1U);
  EXPECT_EQ(leaves(page, kPageSize).pte, 1U);
  EXPECT_EQ(translate(page).pfn, kBar0Pfn + 4);
  // G2 and prefault fill the VMA from B's fault; nobody installs twice.
  EXPECT_EQ(c("mm.pfn_insert.pte"), fillsVma() ? 16U : 1U);
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

INSTANTIATE_TEST_SUITE_P(G2Plus, FaultG2PlusTest,
                         ::testing::ValuesIn(only({DesignKind::kAddressSpace, DesignKind::kFillVma,
                                                   DesignKind::kHugeFault, DesignKind::kPrefault})),
                         designParamName);

// ============================================================================
// HUGE
// ============================================================================

using HugeTest = FaultHugeTest;

TEST_P(HugeTest, HUGE_01_SetupHGetsTwoPudLeaves) {
  const uint64_t va = mapAt(kVaH, kBar2Offset, kH);
  const Counters c;
  const uint64_t before = minFlt();
  ASSERT_TRUE(touch(va).sig.none());
  ASSERT_TRUE(touch(va + kGiB).sig.none());
  // prefault fills the whole VMA on the first fault: the second touch hits.
  EXPECT_EQ(minFlt() - before, isPrefault() ? 1U : 2U);
  EXPECT_EQ(c("vmstat.pgfault"), isPrefault() ? 1U : 2U);
  EXPECT_EQ(c("mm.fault.huge_fault.pud"), isPrefault() ? 1U : 2U);
  EXPECT_EQ(c("mm.fault.fallback.pud"), 0U);
  EXPECT_EQ(c("mm.fault.huge_fault.pmd"), 0U);
  EXPECT_EQ(c("mm.fault.fault"), 0U);
  EXPECT_EQ(c("mm.pfn_insert.pud"), 2U);
  const LeafCounts l = leaves(va, kH);
  EXPECT_EQ(l.pud, 2U);
  EXPECT_EQ(l.total(), 2U);
  const PageTable::Translation first = translate(va);
  EXPECT_EQ(first.level, PtLevel::kPud);
  EXPECT_TRUE(pte::isSpecial(first.entry));
  EXPECT_EQ(pte::pfnOf(first.entry), kBar2Pfn);
  EXPECT_EQ(pte::pfnOf(translate(va + kGiB).entry), kBar2Pfn + (kGiB >> kPageShift));
  EXPECT_EQ(translate(va + kGiB + 0x5000).pfn, kBar2Pfn + (kGiB >> kPageShift) + 5);
  EXPECT_EQ(tables(PtLevel::kPmd), 0U);
  EXPECT_EQ(tables(PtLevel::kPte), 0U);
}

TEST_P(HugeTest, HUGE_02_TwoMegAlignedVaGetsPmdLeaves) {
  const uint64_t va = mapAt(kVa2M, kBar2Offset, kH);
  const Counters c;
  const uint64_t before = minFlt();
  EXPECT_EQ(walk(va, kH), 0U);
  const uint64_t faults = isPrefault() ? 1 : 1024;
  EXPECT_EQ(minFlt() - before, faults);
  // Every fault gets its PMD leaf from huge_fault(order 9) -> NOPAGE, under
  // the per-VMA lock. Order 18 is tried, and falls back, only while the PUD
  // entry is still none — Linux's __handle_mm_fault asks pud_none() before
  // create_huge_pud(), and once a PMD table hangs there it goes straight to
  // the PMD level — so once per 1 GiB region the walk enters (3 here), not
  // on every fault as conformance.md words it.
  const uint64_t gibRegions = isPrefault() ? 1 : 3;
  EXPECT_EQ(c("mm.fault.huge_fault.pud"), gibRegions);
  EXPECT_EQ(c("mm.fault.fallback.pud"), gibRegions);
  EXPECT_EQ(c("mm.fault.huge_fault.pmd"), faults);
  EXPECT_EQ(c("mm.fault.fallback.pmd"), 0U);
  EXPECT_EQ(c("mm.fault.fault"), 0U);
  EXPECT_EQ(c("vmstat.vma_lock_success"), faults);
  EXPECT_EQ(c("mm.pfn_insert.pmd"), 1024U);
  EXPECT_EQ(c("mm.pfn_insert.pud") + c("mm.pfn_insert.pte"), 0U);
  const LeafCounts l = leaves(va, kH);
  EXPECT_EQ(l.pmd, 1024U);
  EXPECT_EQ(l.total(), 1024U);
  EXPECT_EQ(translate(va + kH - kPageSize).pfn, kBar2Pfn + (kHPages - 1));
  EXPECT_EQ(tables(PtLevel::kPte), 0U);
}

TEST_P(HugeTest, HUGE_03_VaNotCongruentToOffsetGetsOnly4KPages) {
  const uint64_t va = mapAt(kVaH + kPageSize, kBar2Offset, kH);
  const Counters c;
  const uint64_t before = minFlt();
  EXPECT_EQ(walk(va, kH), 0U);
  const uint64_t faults = isPrefault() ? 1 : kHPages;
  EXPECT_EQ(minFlt() - before, faults);
  EXPECT_EQ(c("mm.fault.fault"), faults);
  // Orders 18 and 9 always fall back; as in Linux they are only tried while
  // the PUD / PMD entry is none (see HUGE-02): order 18 once per 1 GiB
  // region (3), order 9 twice per 2 MiB region (1025) — in the per-VMA-lock
  // attempt and again under the mmap lock after the order-0 RETRY, before
  // that fault's PTE table exists.
  EXPECT_EQ(c("mm.fault.fallback.pud"), isPrefault() ? 1U : 3U);
  EXPECT_EQ(c("mm.fault.huge_fault.pud"), c("mm.fault.fallback.pud"));
  EXPECT_EQ(c("mm.fault.fallback.pmd"), isPrefault() ? 2U : 2U * 1025U);
  EXPECT_EQ(c("mm.fault.huge_fault.pmd"), c("mm.fault.fallback.pmd"));
  EXPECT_EQ(c("mm.pfn_insert.pmd") + c("mm.pfn_insert.pud"), 0U);
  const LeafCounts l = leaves(va, kH);
  EXPECT_EQ(l.pte, kHPages);
  EXPECT_EQ(l.total(), kHPages);
  EXPECT_EQ(translate(va + 0x7654'3000).pfn, kBar2Pfn + 0x76543);
}

TEST_P(HugeTest, HUGE_06_BlocksMustFitTheVma) {
  // 2 MiB + 4 KiB, VA and offset aligned: a PMD leaf, then one PTE.
  const uint64_t a = mapAt(kVa2M, kBar2Offset, 2 * kMiB + kPageSize);
  ASSERT_TRUE(touch(a).sig.none());
  ASSERT_TRUE(touch(a + 2 * kMiB).sig.none());
  LeafCounts l = leaves(a, 2 * kMiB + kPageSize);
  EXPECT_EQ(l.pmd, 1U);
  EXPECT_EQ(l.pte, 1U);
  EXPECT_EQ(translate(a).level, PtLevel::kPmd);
  EXPECT_EQ(translate(a + 2 * kMiB).level, PtLevel::kPte);
  EXPECT_EQ(translate(a + 2 * kMiB).pfn, kBar2Pfn + 512);

  // 1 MiB: no block fits, PTEs only.
  const uint64_t b = mapAt(kVa2M + 64 * kMiB, kBar2Offset, kMiB);
  ASSERT_TRUE(touch(b).sig.none());
  l = leaves(b, kMiB);
  EXPECT_EQ(l.pmd + l.pud, 0U);
  EXPECT_EQ(l.pte, isPrefault() ? 256U : 1U);

  // [G3.2] starting 4 KiB above a 2 MiB boundary: the block around the
  // first page starts below vm_start, so order 9 falls back there; the next
  // (whole) block gets its PMD leaf from a touch anywhere inside it.
  const uint64_t start = kVa2M + 128 * kMiB + kPageSize;
  const uint64_t cut = mapAt(start, kBar2Offset + kPageSize, 4 * kMiB - kPageSize);
  const Counters c;
  ASSERT_TRUE(touch(cut + 0x3000).sig.none());
  EXPECT_GE(c("mm.fault.fallback.pmd"), 1U);
  EXPECT_EQ(c("mm.pfn_insert.pmd"), isPrefault() ? 1U : 0U);
  EXPECT_EQ(translate(cut + 0x3000).level, PtLevel::kPte);
  EXPECT_EQ(translate(cut + 0x3000).pfn, kBar2Pfn + 4);
  l = leaves(cut, 2 * kMiB - kPageSize);
  EXPECT_EQ(l.pmd, 0U);
  EXPECT_EQ(l.pte, isPrefault() ? 511U : 1U);
  ASSERT_TRUE(touch(cut + 2 * kMiB + 0x8000).sig.none());
  EXPECT_EQ(translate(cut + 2 * kMiB - kPageSize).level, PtLevel::kPmd);
  EXPECT_EQ(translate(cut + 2 * kMiB - kPageSize).pfn, kBar2Pfn + 512);
}

TEST_P(HugeTest, HUGE_07_ThpControls) {
  struct Case {
    const char* what;
    std::string profile;  // empty: G3.1 (linux-6.12.0 + g3_variant)
    ThpEnabled thp;
    int advice;       // -1: none
    bool thpDisable;  // prctl(PR_SET_THP_DISABLE)
    bool huge;
  };
  const Case cases[] = {
      {"MADV_NOHUGEPAGE", "linux-6.12", ThpEnabled::kAlways, madv::kNoHugepage, false, false},
      {"prctl THP disable", "linux-6.12", ThpEnabled::kAlways, -1, true, false},
      // sysfs gate off (6.12.115+): the global setting does not matter.
      {"gate off, never", "linux-6.12", ThpEnabled::kNever, -1, false, true},
      {"gate off, madvise", "linux-6.12", ThpEnabled::kMadvise, -1, false, true},
      {"gate off, never + MADV_NOHUGEPAGE", "linux-6.12", ThpEnabled::kNever, madv::kNoHugepage,
       false, false},
      // sysfs gate on, in each g3_variant.
      {"gate on G3.0, never", "linux-6.12.0", ThpEnabled::kNever, -1, false, false},
      {"gate on G3.0, madvise", "linux-6.12.0", ThpEnabled::kMadvise, -1, false, false},
      {"gate on G3.0, madvise + MADV_HUGEPAGE", "linux-6.12.0", ThpEnabled::kMadvise,
       madv::kHugepage, false, true},
      {"gate on G3.0, always", "linux-6.12.0", ThpEnabled::kAlways, -1, false, true},
      {"gate on G3.1, never", "", ThpEnabled::kNever, -1, false, false},
      {"gate on G3.1, madvise", "", ThpEnabled::kMadvise, -1, false, false},
      {"gate on G3.1, madvise + MADV_HUGEPAGE", "", ThpEnabled::kMadvise, madv::kHugepage, false,
       true},
      {"gate on G3.2 (6.15), never", "linux-6.15", ThpEnabled::kNever, -1, false, false},
      {"gate on G3.2 (6.15), madvise", "linux-6.15", ThpEnabled::kMadvise, -1, false, false},
      {"gate on G3.2 (6.15), madvise + MADV_HUGEPAGE", "linux-6.15", ThpEnabled::kMadvise,
       madv::kHugepage, false, true},
  };
  const DesignKind kind = GetParam();
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    bootProfile(kind, k.profile.empty() ? g3Profile(G3Variant::kG3_1) : named(k.profile));
    proc->mm().setThpEnabled(k.thp);
    proc->prctlSetThpDisable(k.thpDisable);
    const uint64_t va = mapAt(kVaH, kBar2Offset, kH);
    if (k.advice >= 0) {
      ASSERT_EQ(proc->madvise(va, kH, k.advice), 0);
    }
    // The block's first page: G3.0/G3.1 only map a block from there.
    const Counters c;
    ASSERT_TRUE(touch(va).sig.none());
    const PageTable::Translation t = translate(va);
    EXPECT_EQ(t.pfn, kBar2Pfn);
    if (k.huge) {
      EXPECT_EQ(t.level, PtLevel::kPud);
      EXPECT_EQ(c("mm.fault.huge_fault.pud"), 1U);
    } else {
      EXPECT_EQ(t.level, PtLevel::kPte);
      EXPECT_EQ(c("mm.fault.huge_fault.pud") + c("mm.fault.huge_fault.pmd"), 0U);
      // Nothing huge anywhere in H (prefault has filled all of it).
      const LeafCounts l = leaves(va, kH);
      EXPECT_EQ(l.pud + l.pmd, 0U);
      EXPECT_EQ(l.pte, isPrefault() ? kHPages : 1U);
    }
  }
}

TEST_P(HugeTest, HUGE_08_MemoryOffHugeFaultIsFinalSigbus) {
  const uint64_t va = mapAt(kVaH, kBar2Offset, kH);
  setMem(false);
  const Counters c;
  const AccessResult r = touch(va + 0x1000);
  EXPECT_EQ(r.sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(r.sig.code, SigInfo::kBusAdrerr);
  EXPECT_EQ(c("mm.fault.huge_fault.pud"), 1U);
  EXPECT_EQ(c("mm.fault.fallback.pud"), 0U);
  EXPECT_EQ(c("mm.fault.huge_fault.pmd"), 0U);
  EXPECT_EQ(c("mm.fault.fault"), 0U);
  EXPECT_EQ(c("mm.fault.sigbus"), 1U);
  EXPECT_EQ(leaves(va, kH).total(), 0U);
}

TEST_P(HugeTest, HUGE_09_PmdTurnedIntoATableBeforeTheInsert) {
  const uint64_t va = mapAt(kVa2M, kBar2Offset, 4 * kMiB);
  Thread& ta = *proc->addThread(1);
  const Counters c;
  AccessResult ra;
  {
    ScriptHook hook;
    // A passed the mm's "PMD is none" check and is in huge_fault(order 9),
    // about to take memory_lock.
    ScriptHook::Point& aIn = hook.at(1, &memoryLock(), ScriptHook::When::kBeforeAcquire, true);
    std::thread a([&] {
      tRole = 1;
      ra = ta.load(va);
    });
    aIn.reached.wait();
    // Meanwhile a 4 KiB insert elsewhere in the block (as a G3.0/G3.1
    // fallback fault would make) puts a PTE table into that PMD.
    {
      Mm& mm = proc->mm();
      ReadGuard mmap(mm.mmapLock());
      Vma* vma = mm.findVma(VirtAddr(va));
      EXPECT_NE(vma, nullptr);  // no ASSERT: thread A must be let go below
      if (vma != nullptr) {
        EXPECT_EQ(vmfInsertPfn(*vma, VirtAddr(va + 0x1000), kBar2Pfn + 1), vmfault::kNoPage);
      }
    }
    aIn.resume();
    a.join();
  }
  EXPECT_TRUE(ra.sig.none());
  // vmf_insert_pfn_pmd changed nothing; the retried access faulted at 4 KiB.
  EXPECT_EQ(c("mm.fault.huge_fault.pmd"), 1U);
  EXPECT_EQ(translate(va).level, PtLevel::kPte);
  EXPECT_EQ(translate(va).pfn, kBar2Pfn);
  const LeafCounts l = leaves(va, 2 * kMiB);
  EXPECT_EQ(l.pmd, 0U);
  EXPECT_EQ(l.pte, 2U);
  EXPECT_EQ(c("mm.fault.fault"), 1U);
  EXPECT_EQ(ta.task().minFlt.load(), 2U);
  EXPECT_EQ(lockdep::reportCount(), 0U);
}

using HugeVariantTest = FaultHugeTest;

TEST_P(HugeVariantTest, HUGE_04_FirstTouchInsideABlock) {
  // The variants matter here: huge-fault under each g3_variant.
  for (G3Variant v : kVariants) {
    SCOPED_TRACE(variantName(v));
    bootProfile(GetParam(), g3Profile(v));
    const uint64_t va = mapAt(kVa2M, kBar2Offset, kH);
    const uint64_t before = minFlt();
    ASSERT_TRUE(touch(va + kPageSize).sig.none());
    if (v == G3Variant::kG3_2) {
      const LeafCounts l = leaves(va, 2 * kMiB);
      EXPECT_EQ(l.pmd, 1U);
      EXPECT_EQ(l.total(), 1U);
      EXPECT_EQ(translate(va).level, PtLevel::kPmd);
      EXPECT_EQ(translate(va).pfn, kBar2Pfn);
      EXPECT_EQ(translate(va + 2 * kMiB - kPageSize).pfn, kBar2Pfn + 511);
      ASSERT_TRUE(touch(va).sig.none());
      EXPECT_EQ(minFlt() - before, 1U);
    } else {
      EXPECT_EQ(translate(va + kPageSize).level, PtLevel::kPte);
      EXPECT_EQ(translate(va + kPageSize).pfn, kBar2Pfn + 1);
      EXPECT_FALSE(translate(va).present);
      // The PMD now holds a PTE table: VA stays at 4 KiB too.
      const Counters c;
      ASSERT_TRUE(touch(va).sig.none());
      EXPECT_EQ(minFlt() - before, 2U);
      EXPECT_EQ(translate(va).level, PtLevel::kPte);
      EXPECT_EQ(translate(va).pfn, kBar2Pfn);
      EXPECT_EQ(c("mm.fault.huge_fault.pmd"), 0U);  // a table there: order 9 not even tried
      const LeafCounts l = leaves(va, 2 * kMiB);
      EXPECT_EQ(l.pte, 2U);
      EXPECT_EQ(l.pmd, 0U);
    }
  }
}

TEST_P(HugeVariantTest, HUGE_05_MisalignedPfnUnderAnAlignedVa) {
  for (G3Variant v : kVariants) {
    SCOPED_TRACE(variantName(v));
    bootProfile(GetParam(), g3Profile(v));
    // Distinct values in the first two device pages of BAR2.
    const uint32_t page0 = 0x1111'1111;
    const uint32_t page1 = 0x2222'2222;
    ASSERT_EQ(proc->pwrite(fd, &page0, 4, kBar2Offset), 4);
    ASSERT_EQ(proc->pwrite(fd, &page1, 4, kBar2Offset + kPageSize), 4);
    const uint64_t va = mapAt(kVa2M, kBar2Offset + kPageSize, 4 * kMiB);
    const Counters c;
    const AccessResult r = touch(va);
    ASSERT_TRUE(r.sig.none());
    const PageTable::Translation t = translate(va);
    if (v == G3Variant::kG3_0) {
      // Bug 219619: a PMD leaf holding pfn 0x4000001; the MMU ignores the
      // low bits, so VA reaches device page 0 instead of page 1.
      EXPECT_EQ(t.level, PtLevel::kPmd);
      EXPECT_EQ(pte::pfnOf(t.entry), kBar2Pfn + 1);
      EXPECT_EQ(t.pfn, kBar2Pfn);
      EXPECT_EQ(r.value, page0);
      EXPECT_EQ(c("mm.pfn_insert.pmd"), 1U);
    } else {
      EXPECT_EQ(t.level, PtLevel::kPte);
      EXPECT_EQ(t.pfn, kBar2Pfn + 1);
      EXPECT_EQ(r.value, page1);
      EXPECT_GE(c("mm.fault.fallback.pmd"), 1U);
      EXPECT_EQ(c("mm.pfn_insert.pmd"), 0U);
    }
  }
}

TEST_P(HugeVariantTest, HUGE_10_TwoThreadsFaultOneBlock) {
  for (G3Variant v : kVariants) {
    SCOPED_TRACE(variantName(v));
    bootProfile(GetParam(), g3Profile(v));
    const uint64_t va = mapAt(kVa2M, kBar2Offset, 4 * kMiB);
    Thread& ta = *proc->addThread(1);
    Thread& tb = *proc->addThread(2);
    const Counters c;
    AccessResult ra;
    AccessResult rb;
    {
      ScriptHook hook;
      // A touches VA+4 KiB and stops before memory_lock in the handler:
      // huge_fault(9) for G3.2; for G3.0/G3.1 order 9 fell back (address
      // not aligned) and this is the order-0 fault. B then installs the PMD
      // leaf by touching VA.
      ScriptHook::Point& aIn = hook.at(1, &memoryLock(), ScriptHook::When::kBeforeAcquire, true);
      std::thread a([&] {
        tRole = 1;
        ra = ta.load(va + kPageSize);
      });
      aIn.reached.wait();
      std::thread b([&] {
        tRole = 2;
        rb = tb.load(va);
      });
      b.join();
      EXPECT_EQ(translate(va).level, PtLevel::kPmd);
      aIn.resume();
      a.join();
    }
    EXPECT_TRUE(rb.sig.none());
    EXPECT_EQ(tb.task().minFlt.load(), 1U);
    EXPECT_EQ(c("mm.pfn_insert.pmd"), 1U);
    const LeafCounts l = leaves(va, 2 * kMiB);
    EXPECT_EQ(l.pmd, 1U);
    EXPECT_EQ(l.pte, 0U);
    if (v == G3Variant::kG3_2) {
      EXPECT_TRUE(ra.sig.none());
      EXPECT_EQ(ta.task().minFlt.load(), 1U);
      EXPECT_EQ(c("mm.fault.fault"), 0U);
    } else {
      // Bugzilla 220057: A's vmf_insert_pfn finds a huge leaf where its PTE
      // table should be and returns VM_FAULT_OOM. A CPU fault is not killed
      // for it (pagefault_out_of_memory() since 5.16): one warning, and the
      // retried load goes through B's leaf without another fault. (The VM
      // of the bug died where KVM's GUP turned it into -ENOMEM.)
      EXPECT_TRUE(ra.sig.none());
      EXPECT_EQ(ta.task().minFlt.load(), 0U) << "a failed fault counts no min_flt";
      EXPECT_EQ(c("mm.fault.fault"), 1U);
      const std::vector<std::string> log = kernel->machine().log().lines();
      EXPECT_EQ(std::count(log.begin(), log.end(),
                           "Huh VM_FAULT_OOM leaked out to the #PF handler. Retrying PF"),
                1);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(G3, HugeTest,
                         ::testing::ValuesIn(only({DesignKind::kHugeFault, DesignKind::kPrefault})),
                         designParamName);

// HUGE-04/05/10 depend on the g3_variant switch: the huge-fault design booted
// under each of G3.0, G3.1 and G3.2. (The prefault design shares the rule but
// fills whole VMAs on the first fault, which hides it.)
INSTANTIATE_TEST_SUITE_P(G3Variants, HugeVariantTest,
                         ::testing::ValuesIn(only({DesignKind::kHugeFault})), designParamName);

// --- [G2s, G2] -----------------------------------------------------------------

using HugeG2Test = FaultHugeTest;

TEST_P(HugeG2Test, HUGE_11_NoHugeFaultOpMeansFourKOnly) {
  const uint64_t va = mapAt(kVaH, kBar2Offset, kH);
  const Counters c;
  ASSERT_TRUE(touch(va).sig.none());
  ASSERT_TRUE(touch(va + kGiB + 2 * kMiB).sig.none());
  EXPECT_EQ(c("mm.fault.huge_fault.pud") + c("mm.fault.huge_fault.pmd"), 0U);
  EXPECT_EQ(c("mm.pfn_insert.pud") + c("mm.pfn_insert.pmd"), 0U);
  const LeafCounts l = leaves(va, kH);
  EXPECT_EQ(l.pud + l.pmd, 0U);
  // G2 prefaulted the whole 2 GiB at 4 KiB.
  EXPECT_EQ(l.pte, design() == DesignKind::kFillVma ? kHPages : 2U);
  EXPECT_EQ(translate(va + kGiB + 2 * kMiB).level, PtLevel::kPte);
  EXPECT_EQ(translate(va + kGiB + 2 * kMiB).pfn, kBar2Pfn + ((kGiB + 2 * kMiB) >> kPageShift));
}

INSTANTIATE_TEST_SUITE_P(
    G2sG2, HugeG2Test, ::testing::ValuesIn(only({DesignKind::kAddressSpace, DesignKind::kFillVma})),
    designParamName);

// ============================================================================
// ACCT
// ============================================================================

using AcctTest = FaultHugeTest;

TEST_P(AcctTest, ACCT_01_UserFaultAccounting) {
  const uint64_t va = mapBar0();
  Task& task = proc->thread().task();
  Counters c;
  ASSERT_TRUE(touch(va).sig.none());
  EXPECT_EQ(c("vmstat.pgfault"), 1U);
  EXPECT_EQ(task.minFlt.load(), 1U);
  EXPECT_EQ(task.majFlt.load(), 0U);
  EXPECT_EQ(task.perfMinor.load(), 1U);
  EXPECT_EQ(proc->getrusage().ru_minflt, 1U);
  EXPECT_EQ(proc->getrusage().ru_majflt, 0U);
  // A SIGBUS fault counts PGFAULT but no min_flt.
  const uint64_t other = mapBar0();
  setMem(false);
  c = Counters();
  ASSERT_EQ(touch(other).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(c("vmstat.pgfault"), 1U);
  EXPECT_EQ(task.minFlt.load(), 1U);
  EXPECT_EQ(task.majFlt.load(), 0U);
  EXPECT_EQ(task.perfMinor.load(), 1U);
}

TEST_P(AcctTest, ACCT_02_FixupUserFaultAccounting) {
  const uint64_t va = mapBar0();
  Task& task = proc->thread().task();
  Counters c;
  ASSERT_TRUE(fixupUserFault(task, proc->mm(), VirtAddr(va), faultflag::kWrite));
  EXPECT_TRUE(translate(va).present);
  EXPECT_EQ(task.minFlt.load(), 1U);
  EXPECT_EQ(task.majFlt.load(), 0U);
  EXPECT_EQ(task.perfMinor.load(), 0U);  // regs == NULL: no perf event
  EXPECT_EQ(c("vmstat.pgfault"), 1U);
  const uint64_t other = mapBar0();
  setMem(false);
  c = Counters();
  const Status st = fixupUserFault(task, proc->mm(), VirtAddr(other), faultflag::kWrite);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error(), Errno::kEFAULT);
  EXPECT_EQ(task.minFlt.load(), 1U);
  EXPECT_EQ(c("vmstat.pgfault"), 1U);
}

TEST_P(AcctTest, ACCT_03_VmaLockRetryIsNotCounted) {
  ASSERT_TRUE(kernel->profile().mm.perVmaLock);  // mm >= 6.7 in every default profile
  const uint64_t va = mapBar0();
  Task& task = proc->thread().task();
  const Counters c;
  ASSERT_TRUE(touch(va + 0x2000).sig.none());
  EXPECT_EQ(c("vmstat.vma_lock_retry"), 1U);
  EXPECT_EQ(c("vmstat.vma_lock_success"), 0U);
  EXPECT_EQ(c("vmstat.pgfault"), 1U);
  EXPECT_EQ(task.minFlt.load(), 1U);
  EXPECT_EQ(task.majFlt.load(), 0U);
}

TEST_P(AcctTest, ACCT_04_HugeFallbackCallsAndTablesOfAFullH) {
  const bool g3 = design() == DesignKind::kHugeFault || isPrefault();
  if (g3) {
    // One fault falling back 18 -> 9 -> 0: three driver calls, one fault
    // counted. Through fixup_user_fault (mmap lock, no per-VMA attempt), on
    // a BAR0 mapping alone in its 1 GiB region (PUD and PMD still none).
    const uint64_t a = mapAt(kVaH + 8 * kGiB, kBar0Offset, kBar0Len);
    Task& task = proc->thread().task();
    Counters c;
    ASSERT_TRUE(fixupUserFault(task, proc->mm(), VirtAddr(a), 0));
    EXPECT_EQ(c("mm.fault.huge_fault.pud"), 1U);
    EXPECT_EQ(c("mm.fault.huge_fault.pmd"), 1U);
    EXPECT_EQ(c("mm.fault.fallback.pud"), 1U);
    EXPECT_EQ(c("mm.fault.fallback.pmd"), 1U);
    EXPECT_EQ(c("mm.fault.fault"), 1U);
    EXPECT_EQ(c("vmstat.pgfault"), 1U);
    EXPECT_EQ(task.minFlt.load(), 1U);
    // A user fault first tries the per-VMA lock, whose order-0 step returns
    // RETRY (LOCK-05): Linux (6.7+, vmf_can_call_fault) then redoes
    // __handle_mm_fault under the mmap lock. The first attempt's pmd_alloc()
    // left a PMD table in the PUD, so the second skips order 18 but, the PMD
    // being still none, tries order 9 again: the driver sees 18, 9, 9, 0 —
    // four calls — for the one fault counted. The spec's "3 calls" is what
    // one handle_mm_fault call makes.
    const uint64_t b = mapAt(kVaH + 16 * kGiB, kBar0Offset, kBar0Len);
    c = Counters();
    ASSERT_TRUE(touch(b).sig.none());
    EXPECT_EQ(c("mm.fault.huge_fault.pud"), 1U);
    EXPECT_EQ(c("mm.fault.huge_fault.pmd"), 2U);
    EXPECT_EQ(c("mm.fault.fault"), 1U);
    EXPECT_EQ(c("vmstat.pgfault"), 1U);
    EXPECT_EQ(task.minFlt.load(), 2U);
    ASSERT_EQ(proc->munmap(a, kBar0Len), 0);
    ASSERT_EQ(proc->munmap(b, kBar0Len), 0);
  }
  // Page tables of a fully populated H.
  const uint64_t pmdBefore = tables(PtLevel::kPmd);
  const uint64_t pteBefore = tables(PtLevel::kPte);
  const uint64_t h = mapAt(kVaH, kBar2Offset, kH);
  EXPECT_EQ(dmaMapWalk(h, kH), 0U);
  EXPECT_EQ(leaves(h, kH).total(), g3 ? 2U : kHPages);
  if (g3) {
    EXPECT_EQ(tables(PtLevel::kPmd) - pmdBefore, 0U);
    EXPECT_EQ(tables(PtLevel::kPte) - pteBefore, 0U);
  } else {
    EXPECT_EQ(tables(PtLevel::kPmd) - pmdBefore, 2U);
    EXPECT_EQ(tables(PtLevel::kPte) - pteBefore, 1024U);
  }
}

TEST_P(AcctTest, ACCT_05_DmaMappingAWholeMappingCountsPerDesign) {
  const uint64_t bar0 = mapBar0();
  const uint64_t h = mapAt(kVaH, kBar2Offset, kH);
  struct Want {
    uint64_t bar0;
    uint64_t h;
  };
  Want want{};
  switch (design()) {
    case DesignKind::kVmaList:
    case DesignKind::kFillVma:
    case DesignKind::kPrefault:  // fills the VMA on its first fault
      want = {1, 1};
      break;
    case DesignKind::kAddressSpace: want = {16, kHPages}; break;
    case DesignKind::kHugeFault: want = {16, 2}; break;
  }
  const Rusage r0 = proc->getrusage();
  EXPECT_EQ(dmaMapWalk(bar0, kBar0Len), 0U);
  const Rusage r1 = proc->getrusage();
  EXPECT_EQ(r1.ru_minflt - r0.ru_minflt, want.bar0);
  EXPECT_EQ(dmaMapWalk(h, kH), 0U);
  const Rusage r2 = proc->getrusage();
  EXPECT_EQ(r2.ru_minflt - r1.ru_minflt, want.h);
  EXPECT_EQ(r2.ru_majflt, r0.ru_majflt);
  EXPECT_EQ(proc->thread().task().perfMinor.load(), 0U);
  EXPECT_EQ(translate(h + kH - kPageSize).pfn, kBar2Pfn + (kHPages - 1));
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, AcctTest, ::testing::ValuesIn(allDesigns()), designParamName);

// ============================================================================
// LOCK
// ============================================================================

// Workload for LOCK-02/03: faults of every size, a forked child, MEM off and
// on, a reset, a hot reset, munmap and exit.
void lockWorkload(Process& p, int fd, int groupFd, uint64_t bar0, uint64_t bar2) {
  EXPECT_TRUE(p.thread().load(bar0).sig.none());
  EXPECT_TRUE(p.thread().load(bar2).sig.none());
  EXPECT_TRUE(p.thread().load(bar2 + 2 * kMiB + 0x1000).sig.none());
  auto child = p.fork();
  ASSERT_NE(child, nullptr);
  EXPECT_TRUE(child->thread().load(bar0 + 0x1000).sig.none());
  uint32_t cmd = 0;
  ASSERT_EQ(p.pread(fd, &cmd, 2, kConfigOffset + kPciCommand), 2);
  const uint32_t off = cmd & ~uint32_t{kPciCommandMemory};
  ASSERT_EQ(p.pwrite(fd, &off, 2, kConfigOffset + kPciCommand), 2);
  EXPECT_EQ(p.thread().load(bar0).sig.signo, SigInfo::kSigbus);
  ASSERT_EQ(p.pwrite(fd, &cmd, 2, kConfigOffset + kPciCommand), 2);
  EXPECT_TRUE(p.thread().load(bar0).sig.none());
  EXPECT_TRUE(child->thread().load(bar2).sig.none());
  EXPECT_EQ(p.ioctl(fd, VFIO_DEVICE_RESET, nullptr), 0);
  EXPECT_TRUE(p.thread().load(bar0 + 0x2000).sig.none());
  HotResetArg hr = hotResetArg({groupFd});
  EXPECT_EQ(p.ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, hr.get()), 0);
  EXPECT_TRUE(p.thread().load(bar2).sig.none());
  EXPECT_TRUE(child->thread().load(bar0).sig.none());
  child->exit();
  EXPECT_EQ(p.munmap(bar0, kBar0Len), 0);
  EXPECT_EQ(p.munmap(bar2, 4 * kMiB), 0);
}

// --- [all] -------------------------------------------------------------------

using LockTest = FaultHugeTest;

TEST_P(LockTest, LOCK_04_ZapAndAnMmapLockHeldForWrite) {
  const uint64_t va = mapBar0();
  ASSERT_TRUE(touch(va).sig.none());
  ASSERT_EQ(leaves(va, kBar0Len).total(), fillsVma() ? 16U : 1U);
  const uint32_t cmd = configRead(kPciCommand, 2);
  const uint32_t off = cmd & ~uint32_t{kPciCommandMemory};
  Mm& mm = proc->mm();
  enum : int { kRunning = 0, kDone = 1, kBlockedOnMmap = 2 };
  std::atomic<int> outcome{kRunning};
  const auto settle = [&outcome](int how) {
    int expected = kRunning;
    if (outcome.compare_exchange_strong(expected, how)) outcome.notify_all();
  };
  long written = 0;
  {
    ScriptHook hook;
    ScriptHook::Point& wBlocked = hook.at(2, &mm.mmapLock(), ScriptHook::When::kBlocked, false);
    wBlocked.onFire = [&] { settle(kBlockedOnMmap); };
    // P (this thread) holds its mmap lock for write, as an mmap() in
    // progress would.
    mm.mmapWriteLock();
    std::thread w([&] {
      tRole = 2;
      written = proc->pwrite(fd, &off, 2, kConfigOffset + kPciCommand);
      settle(kDone);
    });
    // Whichever comes first: the MEM=0 write returns, or it goes to sleep
    // on P's mmap lock.
    outcome.wait(kRunning);
    if (isG1()) {
      // G1 walks vma_list and needs each listed mm's mmap lock: it waits.
      EXPECT_EQ(outcome.load(), kBlockedOnMmap);
      EXPECT_EQ(leaves(va, kBar0Len).total(), 16U);
    } else {
      // G2+: unmap_mapping_range takes no mmap lock.
      EXPECT_EQ(outcome.load(), kDone);
      EXPECT_EQ(written, 2);
      EXPECT_EQ(leaves(va, kBar0Len).total(), 0U);
    }
    mm.mmapWriteUnlock();
    w.join();
  }
  EXPECT_EQ(written, 2);
  EXPECT_EQ(leaves(va, kBar0Len).total(), 0U);
  for (unsigned i = 0; i < kernel->machine().cpuCount(); ++i)
    EXPECT_FALSE(kernel->machine().cpu(i).tlbTranslates(mm.id(), VirtAddr(va)));
  EXPECT_EQ(touch(va).sig.signo, SigInfo::kSigbus);
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, LockTest, ::testing::ValuesIn(allDesigns()), designParamName);

// --- [G2+] -------------------------------------------------------------------

using LockG2PlusTest = FaultHugeTest;

TEST_P(LockG2PlusTest, LOCK_01_ZapWaitsForAFaultInsideItsReadSection) {
  const uint64_t va = mapBar0();
  const uint64_t page = va + 0x3000;
  Thread& ta = *proc->addThread(1);
  const uint32_t cmd = configRead(kPciCommand, 2);
  const uint32_t off = cmd & ~uint32_t{kPciCommandMemory};
  const Counters c;
  const uint64_t writesBefore = dev->pci().memoryLockWriteCount();
  AccessResult ra;
  long written = 0;
  std::atomic<bool> writeDone{false};
  {
    ScriptHook hook;
    // The fault stops at its first lock after memory_lock (the page-table
    // lock of the insert): past the memory check, holding memory_lock read.
    ScriptHook::Point& aIn = hook.at(1, &memoryLock(), ScriptHook::When::kAfterAcquire, true);
    ScriptHook::Point& wBlocked = hook.at(2, &memoryLock(), ScriptHook::When::kBlocked, false);
    std::thread a([&] {
      tRole = 1;
      ra = ta.load(page);
    });
    aIn.reached.wait();
    EXPECT_TRUE(holds(aIn.held, kVfioMemoryLockClass));
    EXPECT_FALSE(translate(page).present);
    std::thread w([&] {
      tRole = 2;
      written = proc->pwrite(fd, &off, 2, kConfigOffset + kPciCommand);
      writeDone.store(true);
    });
    wBlocked.reached.wait();
    // The writer sleeps on memory_lock while the fault is inside.
    EXPECT_FALSE(writeDone.load());
    EXPECT_EQ(dev->pci().memoryLockWriteCount(), writesBefore);
    aIn.resume();
    w.join();
    a.join();
  }
  EXPECT_EQ(written, 2);
  // The fault installed its entry; the zap that followed removed it.
  EXPECT_GE(c("mm.pfn_insert.pte"), 1U);
  EXPECT_GE(c("mm.zap.pte"), 1U);
  EXPECT_EQ(leaves(va, kBar0Len).total(), 0U);
  for (unsigned i = 0; i < kernel->machine().cpuCount(); ++i)
    EXPECT_FALSE(kernel->machine().cpu(i).tlbTranslates(proc->mm().id(), VirtAddr(page)));
  // The access completed before the zap, or refaulted into SIGBUS after it.
  EXPECT_TRUE(ra.sig.none() || ra.sig.signo == SigInfo::kSigbus) << ra.sig.signo;
  EXPECT_EQ(touch(page).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(kernel->pciHost().decodeViolationCount(), 0U);
}

TEST_P(LockG2PlusTest, LOCK_02_LockOrderWithoutReports) {
  const uint64_t bar0 = mapBar0();
  const uint64_t bar2 = mapAt(kVa2M, kBar2Offset, 4 * kMiB);
  lockdep::resetGraph();
  lockdep::clearReports();
  lockWorkload(*proc, fd, groupFd, bar0, bar2);
  EXPECT_EQ(lockdep::reportCount(), 0U);
  // mmap_lock -> memory_lock -> i_mmap_rwsem -> page-table locks.
  EXPECT_TRUE(lockdep::hasDependency(kMmapLockClass, kVfioMemoryLockClass));
  EXPECT_TRUE(lockdep::hasDependency(kVfioMemoryLockClass, kIMmapRwsemClass));
  EXPECT_TRUE(lockdep::hasDependency(kIMmapRwsemClass, kPtlockClass));
  EXPECT_TRUE(lockdep::hasDependency(kVfioMemoryLockClass, kPtlockClass));
  EXPECT_FALSE(lockdep::hasDependency(kVfioMemoryLockClass, kMmapLockClass));
  EXPECT_FALSE(lockdep::hasDependency(kIMmapRwsemClass, kVfioMemoryLockClass));
  EXPECT_FALSE(lockdep::hasDependency(kIMmapRwsemClass, kMmapLockClass));
  EXPECT_FALSE(lockdep::hasDependency(kPtlockClass, kIMmapRwsemClass));
  EXPECT_FALSE(lockdep::hasDependency(kPtlockClass, kVfioMemoryLockClass));
  EXPECT_FALSE(lockdep::hasDependency(kPtlockClass, kMmapLockClass));
}

INSTANTIATE_TEST_SUITE_P(G2Plus, LockG2PlusTest,
                         ::testing::ValuesIn(only({DesignKind::kAddressSpace, DesignKind::kFillVma,
                                                   DesignKind::kHugeFault, DesignKind::kPrefault})),
                         designParamName);

// --- [G1] --------------------------------------------------------------------

using LockG1Test = FaultHugeTest;

TEST_P(LockG1Test, LOCK_03_G1LockOrder) {
  const uint64_t bar0 = mapBar0();
  const uint64_t bar2 = mapAt(kVa2M, kBar2Offset, 4 * kMiB);
  lockdep::resetGraph();
  lockdep::clearReports();
  lockWorkload(*proc, fd, groupFd, bar0, bar2);
  // No ordering report. (Each whole-VMA fill does report the mmap-lock
  // write assertion under linux-6.9's lockdep: FAULT-05.)
  EXPECT_EQ(lockdep::reportCount(lockdep::ReportKind::kCircularDependency), 0U);
  EXPECT_EQ(lockdep::reportCount(lockdep::ReportKind::kRecursiveLocking), 0U);
  EXPECT_EQ(lockdep::reportCount(), lockdep::reportCount(lockdep::ReportKind::kAssertHeldWrite));
  // mmap_lock -> vma_lock -> memory_lock.
  EXPECT_TRUE(lockdep::hasDependency(kMmapLockClass, kVfioVmaLockClass));
  EXPECT_TRUE(lockdep::hasDependency(kVfioVmaLockClass, kVfioMemoryLockClass));
  EXPECT_TRUE(lockdep::hasDependency(kMmapLockClass, kVfioMemoryLockClass));
  // The zap drops vma_lock before it takes an mmap lock.
  EXPECT_FALSE(lockdep::hasDependency(kVfioVmaLockClass, kMmapLockClass));
  EXPECT_FALSE(lockdep::hasDependency(kVfioMemoryLockClass, kVfioVmaLockClass));
  EXPECT_FALSE(lockdep::hasDependency(kVfioMemoryLockClass, kMmapLockClass));
}

INSTANTIATE_TEST_SUITE_P(G1, LockG1Test, ::testing::ValuesIn(only({DesignKind::kVmaList})),
                         designParamName);

// --- [G3, mm >= 6.7] ---------------------------------------------------------

using LockG3Test = FaultHugeTest;

TEST_P(LockG3Test, LOCK_05_HugeOrdersRunUnderThePerVmaLockAlone) {
  ASSERT_TRUE(kernel->profile().mm.perVmaLock);
  const uint64_t h = mapAt(kVaH, kBar2Offset, kH);                              // order 18
  const uint64_t m = mapAt(kVaH + 4 * kGiB + 2 * kMiB, kBar2Offset, 4 * kMiB);  // order 9
  const uint64_t b = mapBar0();                                                 // order 0
  Mm& mm = proc->mm();
  struct Seen {
    bool mmapLocked = true;
    std::vector<const LockClass*> held;
  };
  const auto faultAt = [&](uint64_t va, int role, Counters& c) {
    Seen seen;
    {
      ScriptHook hook;
      // The first time the fault takes memory_lock, i.e. in the first
      // handler call that got past its fallback test.
      ScriptHook::Point& in = hook.at(role, &memoryLock(), ScriptHook::When::kBeforeAcquire, false);
      in.onFire = [&] { seen.mmapLocked = mm.mmapLock().isLocked(); };
      c = Counters();
      tRole = role;
      EXPECT_TRUE(touch(va).sig.none());
      tRole = 0;
      EXPECT_TRUE(in.fired.load());
      seen.held = in.held;
    }
    return seen;
  };
  Counters c;
  for (const uint64_t va : {h + 0x5000, m + 0x5000}) {
    SCOPED_TRACE(va == h + 0x5000 ? "order 18" : "order 9");
    const Seen s = faultAt(va, va == h + 0x5000 ? 1 : 2, c);
    EXPECT_FALSE(s.mmapLocked);
    EXPECT_TRUE(holds(s.held, kVmaLockClass));
    EXPECT_FALSE(holds(s.held, kMmapLockClass));
    EXPECT_EQ(c("vmstat.vma_lock_success"), 1U);
    EXPECT_EQ(c("vmstat.vma_lock_retry"), 0U);
    EXPECT_EQ(c("mm.fault.fault"), 0U);
  }
  EXPECT_EQ(translate(h).level, PtLevel::kPud);
  EXPECT_EQ(translate(m).level, PtLevel::kPmd);
  // Order 0: RETRY from the per-VMA attempt, the handler only under mmap_lock.
  const Seen s = faultAt(b + 0x5000, 3, c);
  EXPECT_TRUE(s.mmapLocked);
  EXPECT_TRUE(holds(s.held, kMmapLockClass));
  EXPECT_FALSE(holds(s.held, kVmaLockClass));
  EXPECT_EQ(c("vmstat.vma_lock_retry"), 1U);
  EXPECT_EQ(c("vmstat.vma_lock_success"), 0U);
  EXPECT_EQ(c("mm.fault.fault"), 1U);
  EXPECT_EQ(translate(b + 0x5000).level, PtLevel::kPte);
}

INSTANTIATE_TEST_SUITE_P(G3, LockG3Test,
                         ::testing::ValuesIn(only({DesignKind::kHugeFault, DesignKind::kPrefault})),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
