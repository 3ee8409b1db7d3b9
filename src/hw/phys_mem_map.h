// The physical address space as the CPUs see it: RAM and device memory
// (BARs) decoded at fixed physical ranges. A PhysRegion is whatever answers
// loads and stores in its range; PhysMemMap routes a pfn to its region, the
// way the host bridge and the PCI hierarchy route a memory transaction.
// Nothing here is a kernel concept: this is the hardware the kernel drives.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/addr.h"
#include "base/page_geometry.h"

namespace vfiomm {

// The all-ones pattern of an access of `size` bytes (what a master abort
// returns).
constexpr uint64_t allOnes(unsigned size) {
  return size >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * size)) - 1;
}

// One physical access as it reaches a region.
struct AccessInfo {
  int cpu = -1;  // issuing CPU; -1 for an access from no simulated CPU
  PhysAddr addr;
  bool isWrite = false;
  // Ordinal of this access among those `cpu` sent to regions: increases
  // with every such access of that CPU. A global sequence would put one
  // contended cache line on every access of every CPU; the order between
  // CPUs comes from the locks they synchronise through, as on real hardware.
  uint64_t seq = 0;
};

// The host memory behind one 4 KiB page of plain memory. Words are atomic
// because CPUs access the same memory concurrently, as real ones do; a
// narrower store merges into its word. Little endian, like x86.
struct HostPage {
  std::array<std::atomic<uint64_t>, kPageSize / 8> words{};

  // `offset` within the page, aligned to `size`; a store keeps the low
  // `size` bytes of `value`.
  uint64_t load(uint64_t offset, unsigned size) const {
    const uint64_t word = words[offset / 8].load(std::memory_order_acquire);
    return (word >> shiftOf(offset)) & allOnes(size);
  }
  void store(uint64_t offset, unsigned size, uint64_t value) {
    std::atomic<uint64_t>& word = words[offset / 8];
    if (size == 8) {
      word.store(value, std::memory_order_release);
      return;
    }
    const uint64_t mask = allOnes(size) << shiftOf(offset);
    uint64_t old = word.load(std::memory_order_relaxed);
    while (!word.compare_exchange_weak(old, (old & ~mask) | ((value << shiftOf(offset)) & mask),
                                       std::memory_order_release, std::memory_order_relaxed)) {
    }
  }

 private:
  static unsigned shiftOf(uint64_t offset) { return static_cast<unsigned>(offset & 7) * 8; }
};

// A decoded physical range. Accesses are 1, 2, 4 or 8 bytes, naturally
// aligned, within the region: anything else is a bug of the caller (a CPU
// never issues a straddling access: it splits it).
//
// read()/write() may be called concurrently from several CPUs and run under
// the issuing CPU's lock, so a region must not block on a model lock nor
// flush TLBs from inside an access.
class PhysRegion {
 public:
  PhysRegion(std::string name, PhysAddr base, uint64_t size);
  virtual ~PhysRegion() = default;
  PhysRegion(const PhysRegion&) = delete;
  PhysRegion& operator=(const PhysRegion&) = delete;

  uint64_t read(uint64_t offset, unsigned size, const AccessInfo& info) {
    checkAccess(offset, size);
    return doRead(offset, size, info);
  }
  void write(uint64_t offset, unsigned size, uint64_t value, const AccessInfo& info) {
    checkAccess(offset, size);
    doWrite(offset, size, value & allOnes(size), info);
  }

  // The host memory of the page holding `offset`, if accesses to it are
  // plain memory (no side effect, nothing to observe): a CPU may then cache
  // it in its TLB and bypass read()/write(), as QEMU does for RAM. nullptr:
  // every access must come through read()/write().
  virtual HostPage* directPage(uint64_t /*offset*/) { return nullptr; }

  const std::string& name() const { return name_; }
  PhysAddr base() const { return base_; }
  uint64_t size() const { return size_; }
  Pfn firstPfn() const { return Pfn::fromPhys(base_); }
  Pfn endPfn() const { return Pfn::fromPhys(base_ + size_); }
  bool contains(PhysAddr pa) const { return pa >= base_ && pa - base_ < size_; }

  // A CPU access: 1, 2, 4 or 8 bytes at an address aligned to its size
  // (asserts otherwise).
  static void checkShape(uint64_t addr, unsigned size) {
    if (!isPowerOfTwo(size) || size > 8 || !isAligned(addr, size)) [[unlikely]]
      badShape(size);
  }

 protected:
  // `offset` is checked: aligned to `size` and inside the region. `value` of
  // a write is truncated to `size` bytes.
  virtual uint64_t doRead(uint64_t offset, unsigned size, const AccessInfo& info) = 0;
  virtual void doWrite(uint64_t offset, unsigned size, uint64_t value, const AccessInfo& info) = 0;

 private:
  void checkAccess(uint64_t offset, unsigned size) const {
    checkShape(offset, size);
    if (offset >= size_) [[unlikely]]
      outside(offset);
  }
  [[noreturn]] static void badShape(unsigned size);
  [[noreturn]] void outside(uint64_t offset) const;

  const std::string name_;
  const PhysAddr base_;
  const uint64_t size_;
};

// Memory that reads back what was written. Sparse: host memory is allocated
// only for the 4 KiB pages written, so a 128 GiB region costs what is
// touched; untouched memory reads 0.
class RamRegion final : public PhysRegion {
 public:
  RamRegion(std::string name, PhysAddr base, uint64_t size);
  ~RamRegion() override;

  // 4 KiB pages that have host memory behind them.
  uint64_t allocatedPages() const { return allocatedPages_.load(std::memory_order_relaxed); }
  // Written pages only: an untouched one has no memory to point at yet.
  HostPage* directPage(uint64_t offset) override { return findPage(offset); }

 protected:
  uint64_t doRead(uint64_t offset, unsigned size, const AccessInfo& info) override;
  void doWrite(uint64_t offset, unsigned size, uint64_t value, const AccessInfo& info) override;

 private:
  // The 512 pages of one 2 MiB block, allocated at the block's first write.
  struct Directory {
    std::array<std::atomic<HostPage*>, kPtrsPerTable> pages{};
  };

  // The page holding `offset`, or nullptr when it was never written.
  HostPage* findPage(uint64_t offset) const;
  HostPage& pageForWrite(uint64_t offset);

  // One slot per 2 MiB of the region (512 KiB of slots for 128 GiB): two
  // dependent loads from an offset to its page keep the read path short.
  const uint64_t directoryCount_;
  std::unique_ptr<std::atomic<Directory*>[]> directories_;
  std::atomic<uint64_t> allocatedPages_{0};
};

// Routes physical addresses to regions. Lookups are lock free and run on
// every TLB miss of every CPU; registration is rare and copies the region
// table (RCU style): a reader keeps using the snapshot it loaded.
//
// Lifetime: unregisterRegion() does not wait for readers, so a reader may
// still hold the region it looked up. Machine::unregisterRegion() adds the
// grace period (it passes through every CPU's lock) before the region may be
// destroyed.
class PhysMemMap {
 public:
  PhysMemMap();
  ~PhysMemMap();
  PhysMemMap(const PhysMemMap&) = delete;
  PhysMemMap& operator=(const PhysMemMap&) = delete;

  // The region's range must be page aligned, non-empty and overlap no
  // registered region (a model bug otherwise).
  void registerRegion(PhysRegion& region);
  void unregisterRegion(PhysRegion& region);

  // The region decoding `pfn`, or nullptr.
  PhysRegion* lookup(Pfn pfn) const;

  // A complete access: routed to the region, or an unassigned access (reads
  // all ones, writes dropped, counted as hw.phys.unassigned_access).
  uint64_t read(PhysAddr pa, unsigned size, const AccessInfo& info) const;
  void write(PhysAddr pa, unsigned size, uint64_t value, const AccessInfo& info) const;

  size_t regionCount() const;

 private:
  struct Range {
    uint64_t firstPfn;
    uint64_t endPfn;  // exclusive
    PhysRegion* region;
  };
  struct Snapshot {
    std::vector<Range> ranges;  // sorted by firstPfn, disjoint
  };

  void publish(std::unique_ptr<Snapshot> next);

  std::atomic<const Snapshot*> current_;
  std::mutex writerMu_;  // serialises registrations; never held by a reader
  // Every snapshot ever published, freed with the map: readers never have
  // to announce themselves, and registrations are few.
  std::vector<std::unique_ptr<Snapshot>> snapshots_;
};

}  // namespace vfiomm
