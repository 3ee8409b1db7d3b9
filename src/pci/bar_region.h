// BarRegion: the physical range of one memory BAR (or the expansion ROM) as
// the device decodes it. The memory behind it is sparse: host memory is
// allocated for a page at its first write, so a 128 GiB BAR costs what is
// touched, and untouched memory reads 0.
//
// A BAR whose backing is `registers` (BarBacking::kRegisters) has a
// BarRegisters bank instead: implemented registers read their value,
// everything else reads the BAR's `unimplemented` byte, and a reset of the
// device puts the registers back to their reset values. When the MSI-X
// table lives in such a BAR, its entries are registers too (address and
// data latch, vector control resets to masked) and the PBA reads 0.
//
// Every access asks the device whether it decodes memory right now
// (COMMAND.MEMORY, power state, reset; for the ROM also its enable bit). An
// access while it does not is a decode violation — invariant 1: on real
// hardware it can take the host down; the model records it (a bounded list
// plus a total), reads all ones and drops the write. That is why no page is
// ever handed out for direct access: the check must see every access.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "base/addr.h"
#include "hw/phys_mem_map.h"
#include "pci/bar_registers.h"
#include "pci/pci_device.h"

namespace vfiomm {

class BarRegion final : public PhysRegion {
 public:
  struct DecodeViolation {
    int cpu = -1;
    PhysAddr addr;
    bool isWrite = false;
    uint64_t seq = 0;  // AccessInfo::seq of the access
  };
  static constexpr size_t kMaxKeptViolations = 1024;

  // `resource`: a memory BAR's index, or kPciRomResource; already assigned.
  // The region covers the BAR's pages: the part of a page a sub-page BAR
  // leaves is decoded by nobody (reads all ones, writes dropped).
  BarRegion(PciDevice& device, unsigned resource);

  PciDevice& device() const { return device_; }
  unsigned resource() const { return resource_; }
  // Whether the device decodes this range right now; device DMA asks too
  // (invariant 7, iommu/iommu.h), without counting as a CPU access.
  bool decodes() const;

  uint64_t decodeViolationCount() const { return violationCount_.load(std::memory_order_acquire); }
  // The first kMaxKeptViolations, in the order they were recorded.
  std::vector<DecodeViolation> decodeViolations() const;
  // 4 KiB pages of BAR memory that have host memory behind them.
  uint64_t allocatedPages() const { return memory_.allocatedPages(); }

 protected:
  uint64_t doRead(uint64_t offset, unsigned size, const AccessInfo& info) override;
  void doWrite(uint64_t offset, unsigned size, uint64_t value, const AccessInfo& info) override;

 private:
  bool isRom() const { return resource_ == kPciRomResource; }
  // Whether `offset` (of an access, which never straddles) is the BAR's.
  bool claims(uint64_t offset) const { return offset - barOffset_ < barLen_; }
  void recordViolation(uint64_t offset, bool isWrite, const AccessInfo& info);

  PciDevice& device_;
  const unsigned resource_;
  const uint64_t barOffset_;  // where the BAR starts in the region
  const uint64_t barLen_;
  // The BAR's memory, indexed by region offset; never registered anywhere.
  RamRegion memory_;
  // A `registers` BAR's bank, indexed by BAR offset; memory_ stays unused.
  std::unique_ptr<BarRegisters> registers_;

  std::atomic<uint64_t> violationCount_{0};
  // Not a model lock: an access may take it, and it guards only the list.
  mutable std::mutex violationsMu_;
  std::vector<DecodeViolation> violations_;
};

}  // namespace vfiomm
