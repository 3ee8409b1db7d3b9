// The memory-enable state as the config space drives it, and BAR access
// through the device file (MEM, RW): vfio-bar-mapping.md §6, §7, §10. The
// same in every design, except how a zap is observed (G1 walks vma_list
// under vma_lock, G2+ calls unmap_mapping_range).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/byte_units.h"
#include "sync/sched_hook.h"
#include "vfio/design/vma_list_tracking.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

long neg(Errno e) { return -static_cast<long>(toInt(e)); }

// Calls `fn` at every blocking acquisition and every release of any model
// lock, on any thread, then passes the event on to the hook it replaced
// (hooks nest). Installed for its lifetime; `fn` must not take model locks.
class LockEventHook : public SchedHook {
 public:
  using Fn = std::function<void(bool acquire, const void* lock)>;
  // The previous hook is known before this one is visible to other threads.
  explicit LockEventHook(Fn fn) : fn_(std::move(fn)), prev_(&schedHook()) { setSchedHook(this); }
  ~LockEventHook() override { setSchedHook(prev_); }
  LockEventHook(const LockEventHook&) = delete;
  LockEventHook& operator=(const LockEventHook&) = delete;

  void beforeAcquire(const void* lock) override {
    fn_(true, lock);
    prev_->beforeAcquire(lock);
  }
  void wait(const void* lock, const std::atomic<uint32_t>& word, uint32_t observed) override {
    prev_->wait(lock, word, observed);
  }
  void afterRelease(const void* lock, std::atomic<uint32_t>& word, bool waiters) override {
    fn_(false, lock);
    prev_->afterRelease(lock, word, waiters);
  }
  void schedPoint(std::string_view what) override { prev_->schedPoint(what); }

 private:
  Fn fn_;
  SchedHook* prev_;
};

class MemRwTest : public VfioTest {
 protected:
  // mmap `len` bytes of `dfd` at `offset` in `p` and touch every page.
  uint64_t mapTouched(Process& p, int dfd, uint64_t offset, uint64_t len) {
    const long va = p.mmap(0, len, prot::kRead | prot::kWrite, map::kShared, dfd, offset);
    EXPECT_GT(va, 0);
    const auto at = static_cast<uint64_t>(va);
    for (uint64_t o = 0; o < len; o += kPageSize) EXPECT_EQ(touch(at + o, &p).sig.signo, 0);
    return at;
  }
  uint64_t mapTouched(uint64_t offset, uint64_t len) { return mapTouched(*proc, fd, offset, len); }

  RwSemaphore& memoryLock() { return dev->pci().memoryLock(); }
  uint64_t writeLocks() { return dev->pci().memoryLockWriteCount(); }

  // Whether the design's zap of `dev` ran during `action`: G2+ count
  // unmap_mapping_range calls on the device's address space; G1's zap takes
  // vma_lock, which outside a zap only faults and munmap take (`action` must
  // do neither).
  bool zapRan(const std::function<void()>& action) {
    const uint64_t calls = dev->pci().mapping().unmapCalls();
    if (!isG1()) {
      action();
      return dev->pci().mapping().unmapCalls() != calls;
    }
    const void* vmaLock = &static_cast<VmaListTracking&>(dev->pci().design().tracking()).vmaLock();
    std::atomic<int> taken{0};
    {
      LockEventHook hook([&](bool acquire, const void* lock) {
        if (acquire && lock == vmaLock) taken.fetch_add(1);
      });
      action();
    }
    EXPECT_EQ(dev->pci().mapping().unmapCalls(), calls) << "G1 never uses unmap_mapping_range";
    return taken.load() > 0;
  }

  // A device like D plus a ROM, on a new bus, opened by `proc` (becomes
  // `dev`; returns its fd).
  int addDeviceWithRom(uint8_t busNumber, uint64_t romSize) {
    PciBus& bus = kernel->addBus(busNumber);
    PciDeviceConfig cfg = standardDeviceConfig(bus.number());
    cfg.romSize = romSize;
    auto d = kernel->addVfioDevice(bus, cfg);
    EXPECT_TRUE(d) << errnoName(d.error());
    dev = *d;
    return openGroupPath(*proc);
  }
};

TEST_P(MemRwTest, MEM_01_MemoryOffZapsEveryBarInEveryProcess) {
  auto child = proc->fork();  // shares fd; maps on its own after the fork
  ASSERT_NE(child, nullptr);
  struct Mapping {
    Process* p;
    uint64_t va;
    uint64_t len;
  };
  std::vector<Mapping> maps;
  for (Process* p : {proc.get(), child.get()}) {
    maps.push_back({p, mapTouched(*p, fd, kBar0Offset, 64 * kKiB), 64 * kKiB});
    maps.push_back({p, mapTouched(*p, fd, kBar2Offset, 2 * kMiB), 2 * kMiB});
  }
  for (const Mapping& m : maps) ASSERT_GT(leaves(m.va, m.len, m.p).total(), 0U);

  const uint64_t writes = writeLocks();
  const uint32_t cmd = configRead(kPciCommand, 2);
  ASSERT_EQ(configWrite(kPciCommand, cmd & ~uint32_t{kPciCommandMemory}, 2), 2);

  EXPECT_EQ(writeLocks() - writes, 1U);
  for (const Mapping& m : maps) {
    EXPECT_EQ(leaves(m.va, m.len, m.p).total(), 0U) << std::hex << m.va;
    EXPECT_FALSE(translate(m.va, m.p).present);
    EXPECT_EQ(touch(m.va + m.len - kPageSize, m.p).sig.signo, SigInfo::kSigbus);
  }
  uint64_t v = 0;
  EXPECT_EQ(proc->pread(fd, &v, 8, kBar0Offset), neg(Errno::kEIO));
  EXPECT_EQ(proc->pread(fd, &v, 8, kBar2Offset), neg(Errno::kEIO));
}

TEST_P(MemRwTest, MEM_02_WriteToTheHighByteOfCommandTakesNoLockAndZapsNothing) {
  const uint64_t va = mapTouched(kBar0Offset, 64 * kKiB);
  const uint64_t before = leaves(va, 64 * kKiB).total();
  ASSERT_GT(before, 0U);
  const uint64_t writes = writeLocks();
  const uint32_t high = configRead(kPciCommand + 1, 1);
  std::atomic<int> memoryLockEvents{0};
  const bool zapped = zapRan([&] {
    LockEventHook hook([&](bool, const void* lock) {
      if (lock == &memoryLock()) memoryLockEvents.fetch_add(1);
    });
    // INTx disable lives in the high byte; the write does not start at
    // PCI_COMMAND, so it is not a COMMAND write (§6.1).
    EXPECT_EQ(configWrite(kPciCommand + 1, high | (kPciCommandIntxDisable >> 8), 1), 1);
  });
  EXPECT_FALSE(zapped);
  EXPECT_EQ(memoryLockEvents.load(), 0);
  EXPECT_EQ(writeLocks(), writes);
  EXPECT_EQ(leaves(va, 64 * kKiB).total(), before);
  const uint64_t flt = minFlt();
  for (uint64_t o = 0; o < 64 * kKiB; o += kPageSize) EXPECT_EQ(touch(va + o).sig.signo, 0);
  EXPECT_EQ(minFlt(), flt);
}

TEST_P(MemRwTest, MEM_03_MemoryOnTakesTheLockWithoutZapAndMemoryOffAlwaysZaps) {
  const uint64_t va = mapTouched(kBar0Offset, 64 * kKiB);
  const uint64_t populated = leaves(va, 64 * kKiB).total();
  const uint32_t on = configRead(kPciCommand, 2);
  ASSERT_NE(on & kPciCommandMemory, 0U);

  // MEM=1 (already 1): write lock, no zap, entries unchanged.
  uint64_t writes = writeLocks();
  EXPECT_FALSE(zapRan([&] { EXPECT_EQ(configWrite(kPciCommand, on, 2), 2); }));
  EXPECT_EQ(writeLocks() - writes, 1U);
  EXPECT_FALSE(memoryLock().isLocked());
  EXPECT_EQ(leaves(va, 64 * kKiB).total(), populated);
  const uint64_t flt = minFlt();
  EXPECT_EQ(touch(va).sig.signo, 0);
  EXPECT_EQ(minFlt(), flt);

  // MEM=0: zap.
  const uint32_t off = on & ~uint32_t{kPciCommandMemory};
  writes = writeLocks();
  EXPECT_TRUE(zapRan([&] { EXPECT_EQ(configWrite(kPciCommand, off, 2), 2); }));
  EXPECT_EQ(writeLocks() - writes, 1U);
  EXPECT_EQ(leaves(va, 64 * kKiB).total(), 0U);

  // MEM=0 again: the zap runs again and finds nothing.
  const CounterSnapshot counters = CounterSet::current().snapshot();
  writes = writeLocks();
  EXPECT_TRUE(zapRan([&] { EXPECT_EQ(configWrite(kPciCommand, off, 2), 2); }));
  EXPECT_EQ(writeLocks() - writes, 1U);
  const CounterSnapshot delta = CounterSet::current().snapshot().since(counters);
  EXPECT_EQ(delta.get("mm.zap.pte") + delta.get("mm.zap.pmd") + delta.get("mm.zap.pud"), 0U);
  EXPECT_EQ(touch(va).sig.signo, SigInfo::kSigbus);
}

TEST_P(MemRwTest, MEM_04_IoPortBarIgnoresMemoryEnable) {
  setMem(false);
  constexpr uint64_t kBar4Offset = 4ULL << 40;
  const uint32_t out = 0x1234abcd;
  EXPECT_EQ(proc->pwrite(fd, &out, 4, kBar4Offset + 8), 4);
  uint32_t in = 0;
  EXPECT_EQ(proc->pread(fd, &in, 4, kBar4Offset + 8), 4);
  EXPECT_EQ(in, out);
  uint16_t half = 0;
  EXPECT_EQ(proc->pread(fd, &half, 2, kBar4Offset + 10), 2);
  EXPECT_EQ(half, 0x1234U);
  // A memory BAR of the same device refuses, which is what makes the
  // I/O BAR's success meaningful.
  EXPECT_EQ(proc->pread(fd, &in, 4, kBar0Offset), neg(Errno::kEIO));
}

// vfio_pci_core_setup_barmap() requests any BAR it reads, ports included:
// an I/O BAR another driver holds is -EBUSY.
TEST_P(MemRwTest, MMAP_08_AnIoPortBarOwnedElsewhereIsEbusy) {
  constexpr uint64_t kBar4Offset = 4ULL << 40;
  dev->pci().claimBarElsewhere(4);
  uint32_t in = 0;
  EXPECT_EQ(proc->pread(fd, &in, 4, kBar4Offset), neg(Errno::kEBUSY));
  EXPECT_EQ(proc->pwrite(fd, &in, 4, kBar4Offset), neg(Errno::kEBUSY));
  EXPECT_EQ(proc->pread(fd, &in, 4, kBar0Offset), 4) << "BAR0 is vfio's";
}

// With fd_qword_access an aligned 8-byte transfer is one vfio access, and
// on a port it is ioread64_lo_hi()/iowrite64_lo_hi(): two 4-byte port
// accesses, low dword first (x86 has no 8-byte port access).
TEST_P(MemRwTest, MEM_04_QwordTransferOfAnIoPortBarIsTwoDwords) {
  boot(GetParam(), "linux-6.15");
  constexpr uint64_t kBar4Offset = 4ULL << 40;
  unsigned accesses = 0;
  dev->pci().setAccessTrace([&](uint32_t, uint64_t, unsigned size, bool) {
    EXPECT_EQ(size, 8U);
    ++accesses;
  });
  const uint64_t out = 0x1122'3344'5566'7788;
  EXPECT_EQ(proc->pwrite(fd, &out, 8, kBar4Offset + 8), 8);
  uint64_t in = 0;
  EXPECT_EQ(proc->pread(fd, &in, 8, kBar4Offset + 8), 8);
  dev->pci().setAccessTrace({});
  EXPECT_EQ(accesses, 2U);
  EXPECT_EQ(in, out);
  uint32_t dword = 0;
  EXPECT_EQ(proc->pread(fd, &dword, 4, kBar4Offset + 8), 4);
  EXPECT_EQ(dword, 0x5566'7788U) << "the low dword at the lower port";
  EXPECT_EQ(proc->pread(fd, &dword, 4, kBar4Offset + 12), 4);
  EXPECT_EQ(dword, 0x1122'3344U);
}

TEST_P(MemRwTest, MEM_05_RomRegionInfoEnablesPhysicalMemoryOnlyUnderTheWriteLock) {
  fd = addDeviceWithRom(0x20, 64 * kKiB);
  const uint64_t va = mapTouched(kBar0Offset, 64 * kKiB);
  setMem(false);
  ASSERT_FALSE(dev->pdev().memoryDecodeEnabled());
  ASSERT_EQ(dev->pci().virtualCommand() & kPciCommandMemory, 0);

  // After every lock release: is the device decoding, and is memory_lock
  // write-held?
  std::mutex mu;
  std::vector<std::pair<bool, bool>> samples;
  const uint64_t writes = writeLocks();
  vfio_region_info info{.argsz = sizeof(vfio_region_info)};
  info.index = VFIO_PCI_ROM_REGION_INDEX;
  const bool zapped = zapRan([&] {
    LockEventHook hook([&](bool acquire, const void*) {
      if (acquire) return;
      std::lock_guard g(mu);
      samples.emplace_back(dev->pdev().memoryDecodeEnabled(), memoryLock().isWriteLocked());
    });
    EXPECT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &info), 0);
  });
  EXPECT_EQ(info.flags, VFIO_REGION_INFO_FLAG_READ);
  EXPECT_EQ(info.size, 64 * kKiB);

  bool sawDecode = false;
  for (const auto& [decoding, writeLocked] : samples) {
    if (!decoding) continue;
    sawDecode = true;
    EXPECT_TRUE(writeLocked) << "physical MEM set outside the memory_lock write section";
  }
  EXPECT_TRUE(sawDecode) << "physical MEM never set for the ROM probe";
  EXPECT_FALSE(dev->pdev().memoryDecodeEnabled()) << "physical MEM not restored";
  EXPECT_EQ(writeLocks() - writes, 1U);
  EXPECT_FALSE(memoryLock().isLocked());
  EXPECT_EQ(dev->pci().virtualCommand() & kPciCommandMemory, 0);
  EXPECT_FALSE(zapped);
  EXPECT_EQ(touch(va).sig.signo, SigInfo::kSigbus);
}

TEST_P(MemRwTest, MEM_06_BarSizingIsVirtualAndConfigReadsIgnoreMemoryEnable) {
  const uint64_t va = mapTouched(kBar0Offset, 64 * kKiB);
  const uint64_t populated = leaves(va, 64 * kKiB).total();
  const uint64_t writes = writeLocks();
  const uint32_t original = configRead(kPciBaseAddress0, 4);
  EXPECT_EQ(original, kStandardBar0Start);
  uint32_t sized = 0;
  const bool zapped = zapRan([&] {
    EXPECT_EQ(configWrite(kPciBaseAddress0, 0xffffffffU, 4), 4);
    sized = configRead(kPciBaseAddress0, 4);
    EXPECT_EQ(configWrite(kPciBaseAddress0, original, 4), 4);
  });
  // A 64 KiB non-prefetchable 32-bit memory BAR.
  EXPECT_EQ(sized, 0xffff0000U);
  EXPECT_EQ(configRead(kPciBaseAddress0, 4), original);
  EXPECT_FALSE(zapped);
  EXPECT_EQ(writeLocks(), writes);
  EXPECT_EQ(leaves(va, 64 * kKiB).total(), populated);
  const uint64_t flt = minFlt();
  EXPECT_EQ(touch(va + 0x3000).sig.signo, 0);
  EXPECT_EQ(minFlt(), flt);

  setMem(false);
  EXPECT_EQ(configRead(kPciBaseAddress0, 4), original);
  EXPECT_EQ(configRead(kPciCommand, 2) & kPciCommandMemory, 0U);
  vfio_region_info cfg{.argsz = sizeof(vfio_region_info)};
  cfg.index = VFIO_PCI_CONFIG_REGION_INDEX;
  ASSERT_EQ(proc->ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &cfg), 0);
  ASSERT_EQ(cfg.size, 4096U);  // PCIe: extended config space
  uint32_t v = 0;
  EXPECT_EQ(proc->pread(fd, &v, 4, kConfigOffset + cfg.size), neg(Errno::kEFAULT));
  EXPECT_EQ(proc->pread(fd, &v, 4, kConfigOffset + cfg.size - 4), 4);
}

TEST_P(MemRwTest, RW_01_BoundsAndRegionChecks) {
  uint8_t buf[16] = {};
  EXPECT_EQ(proc->pread(fd, buf, 8, kBar0Offset), 8);
  EXPECT_EQ(proc->pread(fd, buf, 8, kBar0Offset + 0x10000), neg(Errno::kEINVAL));
  EXPECT_EQ(proc->pread(fd, buf, 16, kBar0Offset + 0xfff8), 8);  // clipped to the BAR
  EXPECT_EQ(proc->pwrite(fd, buf, 16, kBar0Offset + 0xfff8), 8);
  const uint64_t rom = VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_ROM_REGION_INDEX);
  EXPECT_EQ(proc->pwrite(fd, buf, 4, rom), neg(Errno::kEINVAL));
  EXPECT_EQ(proc->pread(fd, buf, 0, kBar0Offset), 0);
  EXPECT_EQ(proc->pwrite(fd, buf, 0, kBar0Offset + 0x10000), 0);  // count 0 wins
  for (uint32_t index : {8U, 9U, 10U}) {
    EXPECT_EQ(proc->pread(fd, buf, 4, VFIO_PCI_INDEX_TO_OFFSET(index)), neg(Errno::kEINVAL))
        << index;
    EXPECT_EQ(proc->pwrite(fd, buf, 4, VFIO_PCI_INDEX_TO_OFFSET(index)), neg(Errno::kEINVAL))
        << index;
  }
  // BAR5 is unimplemented.
  EXPECT_EQ(proc->pread(fd, buf, 4, VFIO_PCI_INDEX_TO_OFFSET(5)), neg(Errno::kEINVAL));
  // The file position is not modelled: Process has pread/pwrite, which
  // never move it, and no read/write/lseek.
}

TEST_P(MemRwTest, RW_02_MsixTableReadsOnesAndDropsWrites) {
  const uint64_t va = mapTouched(kBar0Offset, 64 * kKiB);
  const uint64_t table = kStandardMsixTableOffset;
  // The device's own table, written through the mapping (MSIX_MAPPABLE).
  ASSERT_EQ(proc->thread().store(va + table, 0x12345678, 4).sig.signo, 0);
  ASSERT_EQ(proc->thread().store(va + table - 8, 0x0badf00d, 4).sig.signo, 0);

  uint8_t buf[16];
  std::memset(buf, 0, sizeof(buf));
  EXPECT_EQ(proc->pread(fd, buf, 16, kBar0Offset + table), 16);
  for (uint8_t b : buf) EXPECT_EQ(b, 0xffU);

  uint8_t junk[16];
  std::memset(junk, 0x5a, sizeof(junk));
  EXPECT_EQ(proc->pwrite(fd, junk, 16, kBar0Offset + table), 16);
  EXPECT_EQ(proc->thread().load(va + table, 4).value, 0x12345678U);
  EXPECT_EQ(proc->thread().load(va + table + 12, 4).value, 0U);

  // Straddling the table's start: the bytes before it are the device's.
  uint32_t words[4] = {};
  EXPECT_EQ(proc->pread(fd, words, 16, kBar0Offset + table - 8), 16);
  EXPECT_EQ(words[0], 0x0badf00dU);
  EXPECT_EQ(words[1], 0U);
  EXPECT_EQ(words[2], 0xffffffffU);
  EXPECT_EQ(words[3], 0xffffffffU);
  // And the table's end (16 vectors of 16 bytes): the PBA after it is the
  // device's again.
  const uint64_t end = table + kStandardMsixVectors * 16;
  uint32_t after = 0xffffffff;
  EXPECT_EQ(proc->pread(fd, &after, 4, kBar0Offset + end), 4);
  EXPECT_EQ(after, 0U);
}

TEST_P(MemRwTest, RW_03_MemoryOffBetweenAccessesFailsTheWholeWrite) {
  // Two accesses (2 x 8 bytes with qword accesses, else 4 x 4): after the
  // first, another thread clears MEM.
  std::vector<unsigned> sizes;
  dev->pci().setAccessTrace([&](uint32_t, uint64_t, unsigned size, bool) {
    sizes.push_back(size);
    if (sizes.size() != 2) return;
    std::thread other([&] { setMem(false); });
    other.join();
  });
  uint8_t out[16];
  for (unsigned i = 0; i < 16; ++i) out[i] = static_cast<uint8_t>(0xa0 + i);
  EXPECT_EQ(proc->pwrite(fd, out, 16, kBar0Offset + 0x100), neg(Errno::kEIO));
  dev->pci().setAccessTrace({});
  ASSERT_EQ(sizes.size(), 2U);  // the second access failed and ended it

  // The first access did reach the device; the rest did not.
  setMem(true);
  uint8_t in[16];
  std::memset(in, 0xee, sizeof(in));
  ASSERT_EQ(proc->pread(fd, in, 16, kBar0Offset + 0x100), 16);
  const unsigned first = sizes[0];
  for (unsigned i = 0; i < 16; ++i) EXPECT_EQ(in[i], i < first ? out[i] : 0U) << i;
}

TEST_P(MemRwTest, RW_04_SplitIntoAlignedAccessesEachUnderTheReadLock) {
  // The sequence of device accesses (their sizes) and memory_lock events
  // (A: acquire, R: release), as one string.
  std::mutex mu;
  std::string events;
  dev->pci().setAccessTrace([&](uint32_t index, uint64_t, unsigned size, bool write) {
    EXPECT_EQ(index, 0U);
    EXPECT_FALSE(write);
    // Never held between accesses, where the user copy happens.
    EXPECT_FALSE(memoryLock().isLocked());
    std::lock_guard g(mu);
    events += std::to_string(size);
  });
  const uint64_t writes = writeLocks();
  uint8_t buf[7];
  {
    LockEventHook hook([&](bool acquire, const void* lock) {
      if (lock != &memoryLock()) return;
      std::lock_guard g(mu);
      events += acquire ? 'A' : 'R';
    });
    EXPECT_EQ(proc->pread(fd, buf, 7, kBar0Offset + 1), 7);
  }
  dev->pci().setAccessTrace({});
  EXPECT_EQ(events, "1AR2AR4AR");
  EXPECT_EQ(writeLocks(), writes);  // every acquisition was a read
}

TEST_P(MemRwTest, RW_05_QwordAccessesPerProfile) {
  struct Case {
    const char* profile;
    unsigned barAccess;  // fd_qword_access
    unsigned romAccess;  // rom_qword_access
  };
  for (const Case& c : {Case{"linux-6.10", 4, 4}, Case{"linux-6.12", 8, 4},
                        Case{"linux-6.15", 8, 8}, Case{"linux-6.19", 8, 4}}) {
    SCOPED_TRACE(c.profile);
    boot(GetParam(), c.profile);
    std::vector<std::pair<uint64_t, unsigned>> trace;
    auto record = [&](uint32_t, uint64_t off, unsigned size, bool) {
      trace.emplace_back(off, size);
    };
    dev->pci().setAccessTrace(record);
    uint64_t v = 0;
    EXPECT_EQ(proc->pread(fd, &v, 8, kBar2Offset), 8);
    dev->pci().setAccessTrace({});
    std::vector<std::pair<uint64_t, unsigned>> want;
    for (uint64_t off = 0; off < 8; off += c.barAccess) want.emplace_back(off, c.barAccess);
    EXPECT_EQ(trace, want);

    fd = addDeviceWithRom(0x20, 64 * kKiB);
    const uint64_t violations = kernel->pciHost().decodeViolationCount();
    trace.clear();
    dev->pci().setAccessTrace(record);
    v = 0;
    EXPECT_EQ(proc->pread(fd, &v, 8, VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_ROM_REGION_INDEX)), 8);
    dev->pci().setAccessTrace({});
    want.clear();
    for (uint64_t off = 0; off < 8; off += c.romAccess) want.emplace_back(off, c.romAccess);
    EXPECT_EQ(trace, want);
    // The ROM's image starts with its signature; the ROM decodes for the read.
    EXPECT_EQ(v & 0xffff, 0xaa55U);
    EXPECT_EQ(kernel->pciHost().decodeViolationCount(), violations);
  }
}

// vfio_pci_bar_rw() of the ROM: pci_map_rom() sizes the image, and the
// BAR past it reads as 0xFF without a device access; a ROM with no valid
// image is -ENOMEM, with the PCI core's line in the log. The ROM BAR
// decodes only during the read.
TEST_P(MemRwTest, RW_05_RomReadsPastItsImageAre0xFF) {
  fd = addDeviceWithRom(0x20, 64 * kKiB);
  const uint64_t rom = VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_ROM_REGION_INDEX);
  char pcir[4] = {};
  EXPECT_EQ(proc->pread(fd, pcir, 4, rom + 0x1C), 4);
  EXPECT_EQ(std::string(pcir, 4), "PCIR");
  std::vector<std::pair<uint64_t, unsigned>> trace;
  dev->pci().setAccessTrace(
      [&](uint32_t, uint64_t off, unsigned size, bool) { trace.emplace_back(off, size); });
  uint64_t v = 0;
  EXPECT_EQ(proc->pread(fd, &v, 8, rom + 32 * kKiB - 4), 8);
  EXPECT_EQ(v, 0xFFFF'FFFF'0000'0000U) << "4 bytes of the image's end, 4 bytes past it";
  std::vector<uint8_t> tail(32 * kKiB);
  EXPECT_EQ(proc->pread(fd, tail.data(), tail.size(), rom + 32 * kKiB),
            32 * static_cast<long>(kKiB));
  EXPECT_EQ(std::count(tail.begin(), tail.end(), 0xFF), static_cast<long>(tail.size()));
  dev->pci().setAccessTrace({});
  EXPECT_EQ(trace, (std::vector<std::pair<uint64_t, unsigned>>{{32 * kKiB - 4, 4}}))
      << "nothing past the image reaches the device";
  EXPECT_EQ(dev->pdev().configRead(kPciRomAddress, 4).value_or(0) & kPciRomAddressEnable, 0U);

  PciBus& bus = kernel->addBus(0x21);
  PciDeviceConfig cfg = standardDeviceConfig(bus.number());
  cfg.romSize = 64 * kKiB;
  cfg.romImage = false;
  auto blank = kernel->addVfioDevice(bus, cfg);
  ASSERT_TRUE(blank);
  dev = *blank;
  const int blankFd = openGroupPath(*proc);
  const size_t lines = kernel->machine().log().lines().size();
  EXPECT_EQ(proc->pread(blankFd, &v, 4, rom), neg(Errno::kENOMEM));
  const auto log = kernel->machine().log().lines();
  ASSERT_EQ(log.size(), lines + 1);
  EXPECT_EQ(log.back(), fmt::format("vfio-pci {}: Invalid PCI ROM header signature: expecting "
                                    "0xaa55, got 0x0000",
                                    (*blank)->pdev().name()));
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, MemRwTest, ::testing::ValuesIn(allDesigns()), designParamName);

}  // namespace
}  // namespace vfiomm::testing
