#include "pci/bar_region.h"

#include <fmt/format.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/assert.h"
#include "base/counter.h"
#include "pci/pci_rom.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(barAccessCounter, "pci.bar.access", "loads and stores that reached a BAR region");
VFIOMM_COUNTER(decodeViolationCounter, "pci.decode_violation",
               "BAR accesses while the device's memory decode was off (invariant 1)");
VFIOMM_COUNTER(unclaimedAccessCounter, "pci.bar.unclaimed_access",
               "accesses to the part of a page a sub-page BAR leaves (master abort)");

uint64_t resourceStart(const PciDevice& dev, unsigned resource) {
  return resource == kPciRomResource ? dev.romStart() : dev.barStart(resource);
}

uint64_t resourceLen(const PciDevice& dev, unsigned resource) {
  if (resource == kPciRomResource) return dev.romLen();
  VFIOMM_ASSERT_MSG(dev.barIsMem(resource), "a BAR region is a memory BAR's");
  return dev.barLen(resource);
}

std::string regionName(const PciDevice& dev, unsigned resource) {
  if (resource == kPciRomResource) return fmt::format("{} ROM", dev.name());
  return fmt::format("{} BAR{}", dev.name(), resource);
}

// The MSI-X table's entries and the PBA, when they are in `bar`: message
// address and data latch, vector control resets to masked (PCI spec), the
// pending bits read 0 (no interrupt is ever pending in the model).
void addMsixRegisters(const PciDevice& dev, unsigned bar, std::vector<BarRegisterSpec>& specs) {
  const std::optional<MsixSpec>& msix = dev.config().msix;
  if (!msix) return;
  const MsixPba pba = msixPba(*msix);
  if (pba.bar == bar)
    for (uint64_t q = 0; q < (msix->vectors + 63) / 64; ++q)
      specs.push_back({fmt::format("msix.pba{}", q), pba.offset + 8 * q, 8, 0, 0});
  const std::optional<MsixTable> table = dev.msixTable();
  if (table->bar != bar) return;
  for (uint64_t v = 0; v < table->size / kPciMsixEntrySize; ++v) {
    const uint64_t entry = table->offset + v * kPciMsixEntrySize;
    specs.push_back({fmt::format("msix{}.addr", v), entry, 8, 0, ~uint64_t{0} << 2});
    specs.push_back({fmt::format("msix{}.data", v), entry + 8, 4, 0, 0xffff'ffff});
    specs.push_back({fmt::format("msix{}.ctrl", v), entry + 12, 4, 1, 1});
  }
}

std::unique_ptr<BarRegisters> registersOf(const PciDevice& dev, unsigned resource) {
  if (resource == kPciRomResource) return nullptr;
  const BarSpec& spec = *dev.config().bars[resource];
  if (spec.backing != BarBacking::kRegisters) return nullptr;
  std::vector<BarRegisterSpec> specs = spec.registers;
  addMsixRegisters(dev, resource, specs);
  return std::make_unique<BarRegisters>(spec.size, std::move(specs), spec.unimplemented);
}

PhysAddr regionBase(const PciDevice& dev, unsigned resource) {
  return PhysAddr(pageAlignDown(resourceStart(dev, resource)));
}

uint64_t regionSize(const PciDevice& dev, unsigned resource) {
  const uint64_t start = resourceStart(dev, resource);
  return pageAlignUp(start + resourceLen(dev, resource)) - pageAlignDown(start);
}

}  // namespace

BarRegion::BarRegion(PciDevice& device, unsigned resource)
    : PhysRegion(regionName(device, resource), regionBase(device, resource),
                 regionSize(device, resource)),
      device_(device),
      resource_(resource),
      barOffset_(resourceStart(device, resource) - base().value()),
      barLen_(resourceLen(device, resource)),
      memory_(name() + " memory", base(), size()),
      registers_(registersOf(device, resource)) {
  if (isRom() && device.config().romImage) {
    const std::vector<uint8_t> header =
        pciRomImageHeader(device.config(), pciRomImageBytes(barLen_));
    for (uint64_t i = 0; i < header.size(); ++i)
      if (header[i] != 0) memory_.write(barOffset_ + i, 1, header[i], {});
  }
}

bool BarRegion::decodes() const {
  return isRom() ? device_.romDecodeEnabled() : device_.memoryDecodeEnabled();
}

void BarRegion::recordViolation(uint64_t offset, bool isWrite, const AccessInfo& info) {
  decodeViolationCounter.add();
  violationCount_.fetch_add(1, std::memory_order_acq_rel);
  std::lock_guard guard(violationsMu_);
  if (violations_.size() < kMaxKeptViolations)
    violations_.push_back({info.cpu, base() + offset, isWrite, info.seq});
}

std::vector<BarRegion::DecodeViolation> BarRegion::decodeViolations() const {
  std::lock_guard guard(violationsMu_);
  return violations_;
}

uint64_t BarRegion::doRead(uint64_t offset, unsigned size, const AccessInfo& info) {
  barAccessCounter.add();
  if (!claims(offset)) {
    unclaimedAccessCounter.add();
    return allOnes(size);
  }
  if (!decodes()) {
    recordViolation(offset, false, info);
    return allOnes(size);
  }
  if (registers_) return registers_->read(offset - barOffset_, size, device_.resetCount());
  return memory_.read(offset, size, info);
}

void BarRegion::doWrite(uint64_t offset, unsigned size, uint64_t value, const AccessInfo& info) {
  barAccessCounter.add();
  if (!claims(offset)) {
    unclaimedAccessCounter.add();
    return;
  }
  if (!decodes()) {
    recordViolation(offset, true, info);
    return;
  }
  if (isRom()) return;  // read-only memory: the write completes and changes nothing
  if (registers_) {
    registers_->write(offset - barOffset_, size, value, device_.resetCount());
    return;
  }
  memory_.write(offset, size, value, info);
}

}  // namespace vfiomm
