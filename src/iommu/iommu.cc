#include "iommu/iommu.h"

#include "base/counter.h"
#include "mm/machine.h"
#include "pci/bar_region.h"
#include "pci/pci_device.h"
#include "trace/tracer.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(dmaAccessCounter, "iommu.dma.access", "device DMA accesses translated");
VFIOMM_COUNTER(dmarFaultCounter, "iommu.dma.dmar_fault", "device DMA blocked by the IOMMU");
VFIOMM_COUNTER(dmaDecodeViolationCounter, "iommu.dma.decode_violation",
               "device DMA reaching a BAR with memory decode off (invariant 7)");

// A DMA is not issued by a simulated CPU.
AccessInfo dmaAccess(PhysAddr pa, bool write) {
  AccessInfo info;
  info.addr = pa;
  info.isWrite = write;
  return info;
}

}  // namespace

Iommu::Iommu(Machine& machine, IommuConfig config)
    : machine_(machine), config_(std::move(config)) {}

std::vector<IovaRange> Iommu::validIovaRanges() const {
  std::vector<IovaRange> ranges{{0, config_.apertureLast}};
  for (const IovaRange& r : config_.reserved) {
    std::vector<IovaRange> next;
    for (const IovaRange& v : ranges) {
      if (r.last < v.start || r.start > v.last) {
        next.push_back(v);
        continue;
      }
      if (r.start > v.start) next.push_back({v.start, r.start - 1});
      if (r.last < v.last) next.push_back({r.last + 1, v.last});
    }
    ranges = std::move(next);
  }
  return ranges;
}

std::shared_ptr<IommuDomain> Iommu::allocDomain() const {
  return std::make_shared<IommuDomain>(config_.pgsizeBitmap);
}

void Iommu::attachDevice(const PciDevice& device, std::shared_ptr<IommuDomain> domain) {
  std::lock_guard<std::mutex> g(attachMu_);
  attached_[&device] = std::move(domain);
}

void Iommu::detachDevice(const PciDevice& device) {
  std::lock_guard<std::mutex> g(attachMu_);
  attached_.erase(&device);
}

std::shared_ptr<IommuDomain> Iommu::domainFor(const PciDevice& device) const {
  std::lock_guard<std::mutex> g(attachMu_);
  auto it = attached_.find(&device);
  return it == attached_.end() ? nullptr : it->second;
}

Result<PhysAddr> Iommu::translate(const PciDevice& device, uint64_t iova, bool write) {
  const std::shared_ptr<IommuDomain> domain = domainFor(device);
  const std::optional<IommuDomain::Iopte> leaf =
      domain ? domain->walk(iova) : std::optional<IommuDomain::Iopte>();
  const int need = write ? iommuprot::kWrite : iommuprot::kRead;
  if (!leaf || (leaf->prot & need) == 0) {
    dmarFaultCounter.add();
    dmarFaults_.fetch_add(1, std::memory_order_acq_rel);
    return fail(Errno::kEIO);
  }
  return leaf->paddr + (iova & (leaf->size - 1));
}

Result<uint64_t> Iommu::dmaRead(const PciDevice& device, uint64_t iova, unsigned size) {
  PhysRegion::checkShape(iova, size);
  auto pa = translate(device, iova, false);
  if (!pa) return fail(pa.error());
  dmaAccessCounter.add();
  PhysRegion* region = machine_.physMemMap().lookup(Pfn::fromPhys(*pa));
  auto* bar = dynamic_cast<BarRegion*>(region);
  if (bar != nullptr && !bar->decodes()) {
    recordViolation(device, iova, false);
    return allOnes(size);
  }
  return machine_.physMemMap().read(*pa, size, dmaAccess(*pa, false));
}

Status Iommu::dmaWrite(const PciDevice& device, uint64_t iova, unsigned size, uint64_t value) {
  PhysRegion::checkShape(iova, size);
  auto pa = translate(device, iova, true);
  if (!pa) return fail(pa.error());
  dmaAccessCounter.add();
  PhysRegion* region = machine_.physMemMap().lookup(Pfn::fromPhys(*pa));
  auto* bar = dynamic_cast<BarRegion*>(region);
  if (bar != nullptr && !bar->decodes()) {
    recordViolation(device, iova, true);
    return ok();
  }
  machine_.physMemMap().write(*pa, size, value, dmaAccess(*pa, true));
  return ok();
}

void Iommu::recordViolation(const PciDevice& device, uint64_t iova, bool write) {
  dmaDecodeViolationCounter.add();
  violationCount_.fetch_add(1, std::memory_order_acq_rel);
  std::lock_guard<std::mutex> g(violationsMu_);
  if (violations_.size() < kMaxKeptViolations)
    violations_.push_back({device.name(), iova, write, trace::Tracer::current().now()});
}

std::vector<DmaDecodeViolation> Iommu::dmaDecodeViolations() const {
  std::lock_guard<std::mutex> g(violationsMu_);
  return violations_;
}

}  // namespace vfiomm
