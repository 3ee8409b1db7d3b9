// Resets and low power (RESET): VFIO_DEVICE_RESET, FLR through DEVCTL,
// VFIO_DEVICE_PCI_HOT_RESET over a dev_set, LOW_POWER_ENTRY —
// vfio-bar-mapping.md §6.1, §7.3, §9. Every reset zaps first; what refills
// differs per design (§8), and `prefault` refills every mapping as soon as
// the device is usable again (docs/design-prefault.md).
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/byte_units.h"
#include "bound_context.h"
#include "pci/pci_bus.h"
#include "sync/sched_hook.h"
#include "vfio/design/vma_list_tracking.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

long neg(Errno e) { return -static_cast<long>(toInt(e)); }

// Calls `fn` at every blocking acquisition of a model lock (`lock` set) and
// at every schedPoint (`point` set), on any thread, then passes the event on
// to the hook it replaced. Installed for its lifetime; `fn` must not take
// model locks.
class EventHook : public SchedHook {
 public:
  using Fn = std::function<void(const void* lock, std::string_view point)>;
  // The previous hook is known before this one is visible to other threads.
  explicit EventHook(Fn fn) : fn_(std::move(fn)), prev_(&schedHook()) { setSchedHook(this); }
  ~EventHook() override { setSchedHook(prev_); }
  EventHook(const EventHook&) = delete;
  EventHook& operator=(const EventHook&) = delete;

  void beforeAcquire(const void* lock) override {
    fn_(lock, {});
    prev_->beforeAcquire(lock);
  }
  void wait(const void* lock, const std::atomic<uint32_t>& word, uint32_t observed) override {
    prev_->wait(lock, word, observed);
  }
  void afterRelease(const void* lock, std::atomic<uint32_t>& word, bool waiters) override {
    prev_->afterRelease(lock, word, waiters);
  }
  void schedPoint(std::string_view what) override {
    fn_(nullptr, what);
    prev_->schedPoint(what);
  }

 private:
  Fn fn_;
  SchedHook* prev_;
};

// One opened device: its vfio device, its device fd and its group fd in `proc`.
struct Opened {
  VfioDevice* dev = nullptr;
  int fd = -1;
  int group = -1;
};

uint64_t counter(std::string_view name) { return CounterSet::current().snapshot().get(name); }

class ResetTest : public VfioTest {
 protected:
  uint64_t mapTouched(Process& p, int dfd, uint64_t offset, uint64_t len) {
    const long va = p.mmap(0, len, prot::kRead | prot::kWrite, map::kShared, dfd, offset);
    EXPECT_GT(va, 0);
    const auto at = static_cast<uint64_t>(va);
    for (uint64_t o = 0; o < len; o += kPageSize) EXPECT_EQ(touch(at + o, &p).sig.signo, 0);
    return at;
  }
  uint64_t mapTouched(int dfd) { return mapTouched(*proc, dfd, kBar0Offset, 64 * kKiB); }
  uint64_t bar0Leaves(uint64_t va, Process* p = nullptr) {
    return leaves(va, 64 * kKiB, p).total();
  }
  bool isPrefault() const { return design() == DesignKind::kPrefault; }

  // A device added to `bus` and opened through its group by `proc`.
  Opened addOpened(PciBus& bus, PciDeviceConfig cfg) {
    auto d = kernel->addVfioDevice(bus, std::move(cfg));
    EXPECT_TRUE(d) << errnoName(d.error());
    VfioDevice* const savedDev = dev;
    const int savedGroup = groupFd;
    dev = *d;
    Opened o{dev, openGroupPath(*proc), groupFd};
    dev = savedDev;
    groupFd = savedGroup;
    return o;
  }
  // A dev_set of two devices like D (slots 0 and 1 of a new bus, behind a
  // bridge), both opened by `proc`.
  std::pair<Opened, Opened> addDevSet(PciBus& bus) {
    Opened a = addOpened(bus, standardDeviceConfig(bus.number(), 0));
    Opened b = addOpened(bus, standardDeviceConfig(bus.number(), 1));
    return {a, b};
  }
  long hotReset(const Opened& via, std::vector<int32_t> groups, uint32_t flags = 0) {
    HotResetArg args = hotResetArg(groups, flags);
    return proc->ioctl(via.fd, VFIO_DEVICE_PCI_HOT_RESET, args.get());
  }

  static VmaListTracking& vmaList(VfioDevice& d) {
    return static_cast<VmaListTracking&>(d.pci().design().tracking());
  }
  // Whether the design's zap of `d` ran during `action`: G2+ count
  // unmap_mapping_range calls on its address space; G1's zap-and-lock takes
  // its vma_lock, which outside a zap only faults and munmap take (`action`
  // must do neither for `d`). The hot reset's G1 zap only trylocks, which
  // the hook does not see: see hotResetZapped().
  bool zapRan(VfioDevice& d, const std::function<void()>& action) {
    const uint64_t calls = d.pci().mapping().unmapCalls();
    if (!isG1()) {
      action();
      return d.pci().mapping().unmapCalls() != calls;
    }
    const void* vmaLock = &vmaList(d).vmaLock();
    std::atomic<int> taken{0};
    {
      EventHook hook([&](const void* lock, std::string_view) {
        if (lock == vmaLock) taken.fetch_add(1);
      });
      action();
    }
    return taken.load() > 0;
  }
  // Whether a hot reset zapped `d`, whose one mapping was populated: one
  // unmap_mapping_range call since `calls` (G2+), or vma_list emptied (G1).
  bool hotResetZapped(VfioDevice& d, uint64_t calls) {
    return isG1() ? vmaList(d).listLength() == 0 : d.pci().mapping().unmapCalls() == calls + 1;
  }
  static uint64_t unmapCalls(const Opened& o) { return o.dev->pci().mapping().unmapCalls(); }
  // After a zap of a device that is usable again: gone (the next touch
  // refaults), or refilled at once by `prefault`.
  void expectZappedAndUsable(VfioDevice& d, uint64_t va, Process* p = nullptr) {
    EXPECT_EQ(bar0Leaves(va, p), isPrefault() ? 16U : 0U);
    const uint64_t flt = minFlt(p);
    EXPECT_EQ(touch(va + 0x1000, p).sig.signo, 0);
    EXPECT_EQ(minFlt(p) - flt, isPrefault() ? 0U : 1U);
    EXPECT_EQ(translate(va + 0x1000, p).pfn, Pfn::fromPhys(PhysAddr(d.pdev().barStart(0))) + 1);
  }
};

// A device without a function-level reset: no DEVCAP FLR, and a PM
// capability with NoSoftRst (D3hot -> D0 does not reset).
PciDeviceConfig withoutFlr(uint8_t bus) {
  PciDeviceConfig cfg = standardDeviceConfig(bus);
  cfg.pcie->flr = false;
  cfg.pm->noSoftReset = true;
  return cfg;
}

TEST_P(ResetTest, RESET_01_DeviceResetZapsAndLeavesTheDeviceInD0) {
  // Without reset_works (no FLR, NoSoftRst, on a root bus so no bus
  // reset either: UAPI-03): -EINVAL before anything else.
  PciBus& bus = kernel->addBus(0x20, /*behindBridge=*/false);
  const Opened plain = addOpened(bus, withoutFlr(bus.number()));
  ASSERT_FALSE(plain.dev->pci().resetWorks());
  const uint64_t plainVa = mapTouched(plain.fd);
  bool zapped = zapRan(*plain.dev, [&] {
    EXPECT_EQ(proc->ioctl(plain.fd, VFIO_DEVICE_RESET, nullptr), neg(Errno::kEINVAL));
  });
  EXPECT_FALSE(zapped);
  EXPECT_EQ(bar0Leaves(plainVa), 16U);

  // D: zapped, reset, usable again.
  ASSERT_TRUE(dev->pci().resetWorks());
  const uint64_t va = mapTouched(fd);
  const uint64_t flrs = counter("pci.flr");
  zapped = zapRan(*dev, [&] { EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_RESET, nullptr), 0); });
  EXPECT_TRUE(zapped);
  EXPECT_EQ(counter("pci.flr") - flrs, 1U);
  EXPECT_EQ(dev->pdev().powerState(), PciPowerState::kD0);
  expectZappedAndUsable(*dev, va);

  // From D3hot: the reset brings the device back to D0.
  const uint32_t pmcsr = *dev->pdev().pmCapOffset() + kPciPmCtrl;
  const uint32_t ctrl = configRead(pmcsr, 2);
  ASSERT_EQ(configWrite(pmcsr, (ctrl & ~uint32_t{kPciPmCtrlStateMask}) | 3U, 2), 2);
  ASSERT_EQ(dev->pdev().powerState(), PciPowerState::kD3hot);
  EXPECT_EQ(touch(va).sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_RESET, nullptr), 0);
  EXPECT_EQ(dev->pdev().powerState(), PciPowerState::kD0);
  EXPECT_EQ(touch(va).sig.signo, 0);
  EXPECT_EQ(translate(va).pfn, Pfn(0xF0000));
}

TEST_P(ResetTest, RESET_02_DeviceLockHeldElsewhereIsEagainAfterTheZap) {
  const uint64_t va = mapTouched(fd);
  // In D3hot: the reset sets D0 before it tries the function reset.
  const uint32_t pmcsr = *dev->pdev().pmCapOffset() + kPciPmCtrl;
  ASSERT_EQ(configWrite(pmcsr, (configRead(pmcsr, 2) & ~uint32_t{kPciPmCtrlStateMask}) | 3U, 2), 2);
  ASSERT_EQ(dev->pdev().powerState(), PciPowerState::kD3hot);
  std::atomic<int> stage{0};  // 1: the lock is held; 2: let it go
  testing::BoundThread holder(kernel->context(), [&] {
    dev->pdev().deviceLock().lock();
    stage.store(1);
    stage.notify_all();
    for (int s = stage.load(); s != 2; s = stage.load()) stage.wait(s);
    dev->pdev().deviceLock().unlock();
  });
  for (int s = stage.load(); s != 1; s = stage.load()) stage.wait(s);

  const uint64_t flrs = counter("pci.flr");
  const bool zapped = zapRan(
      *dev, [&] { EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_RESET, nullptr), neg(Errno::kEAGAIN)); });
  EXPECT_TRUE(zapped);
  EXPECT_EQ(counter("pci.flr"), flrs);
  EXPECT_EQ(dev->pdev().powerState(), PciPowerState::kD0);
  EXPECT_FALSE(dev->pci().memoryLock().isLocked());
  stage.store(2);
  stage.notify_all();
  holder.join();
  expectZappedAndUsable(*dev, va);

  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_RESET, nullptr), 0);
  EXPECT_EQ(counter("pci.flr") - flrs, 1U);
}

TEST_P(ResetTest, RESET_03_FlrThroughDevctlZapsAndResetsUnderTheLock) {
  const uint64_t va = mapTouched(fd);
  const uint32_t devctl = *dev->pdev().pcieCapOffset() + kPciExpDevctl;
  const uint32_t ctl = configRead(devctl, 2);
  ASSERT_EQ(ctl & kPciExpDevctlBcrFlr, 0U);

  // At the reset itself: memory_lock write-held, the mapping already zapped.
  std::atomic<int> flrs{0};
  std::atomic<bool> underLock{false};
  std::atomic<bool> zappedFirst{false};
  const uint64_t writes = dev->pci().memoryLockWriteCount();
  const bool zapped = zapRan(*dev, [&] {
    EventHook hook([&](const void*, std::string_view point) {
      if (point != "pci.flr") return;
      flrs.fetch_add(1);
      underLock.store(dev->pci().memoryLock().isWriteLocked());
      zappedFirst.store(!translate(va).present);
    });
    EXPECT_EQ(configWrite(devctl, ctl | kPciExpDevctlBcrFlr, 2), 2);
  });
  EXPECT_TRUE(zapped);
  EXPECT_EQ(flrs.load(), 1);
  EXPECT_TRUE(underLock.load());
  EXPECT_TRUE(zappedFirst.load());
  EXPECT_EQ(dev->pci().memoryLockWriteCount() - writes, 1U);
  EXPECT_EQ(configRead(devctl, 2), ctl);  // BCR_FLR reads back 0, the rest kept
  expectZappedAndUsable(*dev, va);

  // Without DEVCAP FLR the bit is only cleared: no lock, no zap, no reset.
  PciBus& bus = kernel->addBus(0x20);
  const Opened plain = addOpened(bus, withoutFlr(bus.number()));
  const uint64_t plainVa = mapTouched(plain.fd);
  const uint32_t plainCtl = *plain.dev->pdev().pcieCapOffset() + kPciExpDevctl;
  uint32_t v = 0;
  ASSERT_EQ(proc->pread(plain.fd, &v, 2, kConfigOffset + plainCtl), 2);
  const uint64_t flrCount = counter("pci.flr");
  const uint64_t plainWrites = plain.dev->pci().memoryLockWriteCount();
  const uint32_t value = v | kPciExpDevctlBcrFlr;
  const bool plainZapped = zapRan(*plain.dev, [&] {
    EXPECT_EQ(proc->pwrite(plain.fd, &value, 2, kConfigOffset + plainCtl), 2);
  });
  EXPECT_FALSE(plainZapped);
  EXPECT_EQ(counter("pci.flr"), flrCount);
  EXPECT_EQ(plain.dev->pci().memoryLockWriteCount(), plainWrites);
  EXPECT_EQ(bar0Leaves(plainVa), 16U);
  uint32_t back = 0xffff;
  ASSERT_EQ(proc->pread(plain.fd, &back, 2, kConfigOffset + plainCtl), 2);
  EXPECT_EQ(back, v);
}

TEST_P(ResetTest, RESET_04_HotResetZapsEveryDeviceAndReleasesEveryLock) {
  PciBus& bus = kernel->addBus(0x20);
  auto [a, b] = addDevSet(bus);
  const uint64_t vaA = mapTouched(a.fd);
  const uint64_t vaB = mapTouched(b.fd);
  const uint64_t resets = counter("pci.bus_reset");
  const uint64_t callsA = unmapCalls(a);
  const uint64_t callsB = unmapCalls(b);
  EXPECT_EQ(hotReset(a, {a.group, b.group}), 0);
  EXPECT_TRUE(hotResetZapped(*a.dev, callsA));
  EXPECT_TRUE(hotResetZapped(*b.dev, callsB));
  EXPECT_EQ(counter("pci.bus_reset") - resets, 1U);
  for (const Opened& o : {a, b}) {
    EXPECT_FALSE(o.dev->pci().memoryLock().isLocked());
    if (isG1()) {
      EXPECT_FALSE(vmaList(*o.dev).vmaLock().isLocked());
    }
  }
  expectZappedAndUsable(*a.dev, vaA);
  expectZappedAndUsable(*b.dev, vaB);
}

TEST_P(ResetTest, RESET_05_ContendedMemoryLockIsEbusyWithoutBusReset) {
  PciBus& bus = kernel->addBus(0x20);
  auto [a, b] = addDevSet(bus);
  const uint64_t vaA = mapTouched(a.fd);
  const uint64_t keptB = mapTouched(b.fd);  // device 2 is never zapped
  const long faultVa = proc->mmap(0, 64 * kKiB, prot::kRead | prot::kWrite, map::kShared, b.fd, 0);
  ASSERT_GT(faultVa, 0);

  // A fault on device 2, paused at its first lock acquisition (or
  // scheduling point) while it holds device 2's memory_lock for read.
  RwSemaphore& memB = b.dev->pci().memoryLock();
  std::atomic<std::thread::id> faulter{};
  std::atomic<int> stage{0};  // 1: paused; 2: go on; 3: the fault returned
  EventHook hook([&](const void*, std::string_view) {
    if (std::this_thread::get_id() != faulter.load() || stage.load() != 0 ||
        !lockdep::isHeld(&memB))
      return;
    stage.store(1);
    stage.notify_all();
    for (int s = stage.load(); s != 2; s = stage.load()) stage.wait(s);
  });
  Thread& cpu1 = *proc->addThread(1);
  AccessResult faulted;
  testing::BoundThread fault(kernel->context(), [&] {
    faulter.store(std::this_thread::get_id());
    faulted = cpu1.load(static_cast<uint64_t>(faultVa));
    stage.store(3);
    stage.notify_all();
  });
  for (int s = stage.load(); s == 0; s = stage.load()) stage.wait(s);
  if (stage.load() != 1) {
    ADD_FAILURE() << "the fault never paused holding device 2's memory_lock";
    fault.join();
    return;
  }

  const uint64_t resets = counter("pci.bus_reset");
  const uint64_t callsA = unmapCalls(a);
  const uint64_t callsB = unmapCalls(b);
  EXPECT_EQ(hotReset(a, {a.group, b.group}), neg(Errno::kEBUSY));
  EXPECT_EQ(counter("pci.bus_reset"), resets);
  EXPECT_TRUE(hotResetZapped(*a.dev, callsA));
  EXPECT_FALSE(a.dev->pci().memoryLock().isLocked());
  if (isG1()) {
    // G1's trylock of device 2's vma_lock, held by the fault, fails first
    // (keptB stays listed: checked once the fault let go of vma_lock).
    EXPECT_FALSE(vmaList(*a.dev).vmaLock().isLocked());
  } else {
    EXPECT_EQ(unmapCalls(b), callsB);
  }
  EXPECT_EQ(bar0Leaves(keptB), 16U);
  EXPECT_EQ(bar0Leaves(vaA), isPrefault() ? 16U : 0U);

  stage.store(2);
  stage.notify_all();
  fault.join();
  EXPECT_EQ(faulted.sig.signo, 0);
  EXPECT_TRUE(translate(static_cast<uint64_t>(faultVa)).present);
  EXPECT_FALSE(memB.isLocked());
  if (isG1()) {
    EXPECT_EQ(vmaList(*b.dev).listLength(), 2U);  // keptB and the faulted VMA
  }

  // Uncontended, the same reset goes through.
  EXPECT_EQ(hotReset(a, {a.group, b.group}), 0);
  EXPECT_EQ(counter("pci.bus_reset") - resets, 1U);
}

TEST_P(ResetTest, RESET_07_HotResetValidation) {
  PciBus& bus = kernel->addBus(0x20);
  auto [a, b] = addDevSet(bus);
  const uint64_t resets = counter("pci.bus_reset");
  const uint64_t flrs = counter("pci.flr");

  EXPECT_EQ(hotReset(a, {a.group, b.group}, 1), neg(Errno::kEINVAL));
  // Device 2 is not in the groups passed: not owned by the caller.
  EXPECT_EQ(hotReset(a, {a.group}), neg(Errno::kEINVAL));
  // A group-opened device must pass its groups.
  EXPECT_EQ(hotReset(a, {}), neg(Errno::kEINVAL));
  HotResetArg shortArgs = hotResetArg({a.group, b.group});
  shortArgs->argsz = 8;
  EXPECT_EQ(proc->ioctl(a.fd, VFIO_DEVICE_PCI_HOT_RESET, shortArgs.get()), neg(Errno::kEINVAL));
  EXPECT_FALSE(a.dev->pci().memoryLock().isLocked());
  EXPECT_FALSE(b.dev->pci().memoryLock().isLocked());

  // On a root bus: neither slot nor bus reset. (Its first open resets it
  // with an FLR, which is not the hot reset's.)
  PciBus& root = kernel->addBus(0x30, /*behindBridge=*/false);
  const Opened r = addOpened(root, standardDeviceConfig(root.number()));
  const uint64_t flrsAtOpen = counter("pci.flr") - flrs;
  EXPECT_EQ(flrsAtOpen, 1U);
  EXPECT_EQ(hotReset(r, {r.group}), neg(Errno::kENODEV));
  HotResetInfoArg info(2);
  EXPECT_EQ(proc->ioctl(r.fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info.get()), neg(Errno::kENODEV));
  EXPECT_EQ(proc->ioctl(a.fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info.get()), 0);
  EXPECT_EQ(info->count, 2U);

  EXPECT_EQ(counter("pci.bus_reset"), resets);
  EXPECT_EQ(counter("pci.flr"), flrs + flrsAtOpen);
}

TEST_P(ResetTest, RESET_08_SecondLowPowerEntryIsEinvalButStillZaps) {
  // mm >= 6.0: every profile of the model is (linux-6.1 and later).
  const uint64_t va = mapTouched(fd);
  // Through a pointer: clang does not capture a struct with a flexible
  // array member.
  vfio_device_feature entryArg{.argsz = sizeof(vfio_device_feature)};
  entryArg.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY;
  vfio_device_feature* const entry = &entryArg;
  bool zapped = zapRan(*dev, [&] { EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_FEATURE, entry), 0); });
  EXPECT_TRUE(zapped);
  EXPECT_TRUE(dev->pci().pmRuntimeEngaged());
  EXPECT_EQ(bar0Leaves(va), 0U);
  EXPECT_EQ(touch(va).sig.signo, SigInfo::kSigbus);

  const uint64_t writes = dev->pci().memoryLockWriteCount();
  zapped = zapRan(
      *dev, [&] { EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_FEATURE, entry), neg(Errno::kEINVAL)); });
  EXPECT_TRUE(zapped);
  // The device runtime-suspended after the first entry: this ioctl resumes
  // it (vfio_pci_core_runtime_resume), enters (zap, -EINVAL) and its put
  // suspends it again (vfio_pci_core_runtime_suspend): three write sections.
  EXPECT_EQ(dev->pci().memoryLockWriteCount() - writes, 3U);
  EXPECT_TRUE(dev->pci().runtimeSuspended());
  EXPECT_FALSE(dev->pci().memoryLock().isLocked());
  EXPECT_TRUE(dev->pci().pmRuntimeEngaged());

  vfio_device_feature exit{.argsz = sizeof(vfio_device_feature)};
  exit.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT;
  EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_FEATURE, &exit), 0);
  EXPECT_FALSE(dev->pci().pmRuntimeEngaged());
  EXPECT_EQ(touch(va).sig.signo, 0);
}

TEST_P(ResetTest, RESET_09_FailingBusResetReturnsItsErrorAfterZappingEveryDevice) {
  PciBus& bus = kernel->addBus(0x20);
  auto [a, b] = addDevSet(bus);
  const uint64_t vaA = mapTouched(a.fd);
  const uint64_t vaB = mapTouched(b.fd);
  bus.setResetFailure(Errno::kENOTTY);  // the link does not come back
  const uint64_t resets = counter("pci.bus_reset");
  const uint64_t callsA = unmapCalls(a);
  const uint64_t callsB = unmapCalls(b);
  EXPECT_EQ(hotReset(a, {a.group, b.group}), neg(Errno::kENOTTY));
  EXPECT_EQ(counter("pci.bus_reset") - resets, 1U);
  EXPECT_TRUE(hotResetZapped(*a.dev, callsA));
  EXPECT_TRUE(hotResetZapped(*b.dev, callsB));
  for (const Opened& o : {a, b}) EXPECT_FALSE(o.dev->pci().memoryLock().isLocked());
  expectZappedAndUsable(*a.dev, vaA);
  expectZappedAndUsable(*b.dev, vaB);
  bus.setResetFailure(std::nullopt);
  EXPECT_EQ(hotReset(a, {a.group, b.group}), 0);
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, ResetTest, ::testing::ValuesIn(allDesigns()), designParamName);

// G1's hot reset takes every mapping process's mmap lock with a trylock.
using VmaListResetTest = ResetTest;

TEST_P(VmaListResetTest, RESET_06_MmapLockHeldForWriteIsEbusyAndReleasesEverything) {
  PciBus& bus = kernel->addBus(0x20);
  auto [a, b] = addDevSet(bus);
  const uint64_t vaA = mapTouched(a.fd);
  // Another process maps device 2 (a child sharing the fds, mapping after
  // the fork, so that its VMA is listed).
  auto child = proc->fork();
  ASSERT_NE(child, nullptr);
  const uint64_t vaB = mapTouched(*child, b.fd, kBar0Offset, 64 * kKiB);
  ASSERT_EQ(vmaList(*b.dev).listLength(), 1U);

  std::atomic<int> stage{0};  // 1: held; 2: let it go
  testing::BoundThread holder(kernel->context(), [&] {
    child->mm().mmapWriteLock();
    stage.store(1);
    stage.notify_all();
    for (int s = stage.load(); s != 2; s = stage.load()) stage.wait(s);
    child->mm().mmapWriteUnlock();
  });
  for (int s = stage.load(); s != 1; s = stage.load()) stage.wait(s);

  const uint64_t resets = counter("pci.bus_reset");
  EXPECT_EQ(hotReset(a, {a.group, b.group}), neg(Errno::kEBUSY));
  EXPECT_EQ(counter("pci.bus_reset"), resets);
  for (const Opened& o : {a, b}) {
    EXPECT_FALSE(vmaList(*o.dev).vmaLock().isLocked());
    EXPECT_FALSE(o.dev->pci().memoryLock().isLocked());
  }
  // Device 2's mapping could not be zapped: still listed and populated.
  EXPECT_EQ(vmaList(*b.dev).listLength(), 1U);
  EXPECT_EQ(bar0Leaves(vaB, child.get()), 16U);

  stage.store(2);
  stage.notify_all();
  holder.join();
  EXPECT_EQ(hotReset(a, {a.group, b.group}), 0);
  EXPECT_EQ(counter("pci.bus_reset") - resets, 1U);
  EXPECT_EQ(vmaList(*b.dev).listLength(), 0U);
  EXPECT_EQ(bar0Leaves(vaB, child.get()), 0U);
  EXPECT_EQ(bar0Leaves(vaA), 0U);
}

INSTANTIATE_TEST_SUITE_P(G1, VmaListResetTest, ::testing::Values(DesignKind::kVmaList),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
