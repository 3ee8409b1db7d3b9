// PciAllocator: gives BARs physical (and I/O port) addresses out of the host
// bridge's windows, as the kernel's resource allocator does: each BAR
// naturally aligned to its size, in the lowest free place of its window.
// Callers hand it a device's BARs largest first, which packs them. A caller
// may also claim a fixed range (a device placed where a scenario says).
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"

namespace vfiomm {

// [start, end)
struct AddressWindow {
  uint64_t start = 0;
  uint64_t end = 0;
};

// The host bridge's apertures (what firmware reports in _CRS).
struct HostBridgeWindows {
  // 32-bit BARs and ROMs: below the IOAPIC/LAPIC range at 0xFEC0_0000.
  AddressWindow mem32{0xE000'0000, 0xFEC0'0000};
  // 64-bit BARs: from 256 GiB to 64 TiB, within a 46-bit physical space.
  AddressWindow mem64{0x40'0000'0000, 0x4000'0000'0000};
  AddressWindow io{0x1000, 0x1'0000};
};

enum class PciWindow : uint8_t { kMem32, kMem64, kIo };

class PciAllocator {
 public:
  explicit PciAllocator(const HostBridgeWindows& windows);

  // The lowest address of `window` aligned to `size` (a power of two) whose
  // range is free; -ENOSPC when none is. Memory is claimed in whole pages
  // (aligned to at least a page), so no two BARs share a page: the physical
  // map routes pages, and vfio can mmap a sub-page BAR only when its page
  // holds nothing else.
  Result<uint64_t> allocate(PciWindow window, uint64_t size);
  // Claims [start, start + size) in the address space of `window` (memory
  // or I/O), inside the window or not; -EBUSY if any of it is taken.
  Status reserve(PciWindow window, uint64_t start, uint64_t size);

 private:
  struct Range {
    uint64_t start;
    uint64_t end;  // exclusive
  };

  std::vector<Range>& usedIn(PciWindow window);
  // The range a claim of [start, start + size) takes: whole pages for memory.
  static Range claimOf(PciWindow window, uint64_t start, uint64_t size);
  static void insert(std::vector<Range>& used, Range r);

  HostBridgeWindows windows_;
  std::vector<Range> memoryUsed_;  // sorted by start, disjoint
  std::vector<Range> ioUsed_;
};

}  // namespace vfiomm
