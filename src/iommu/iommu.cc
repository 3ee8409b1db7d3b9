#include "iommu/iommu.h"

#include "base/counter.h"
#include "hw/machine.h"
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

template <class Transaction>
Status Iommu::dma(const PciDevice& device, uint64_t iova, bool write, Transaction&& transaction) {
  const std::shared_ptr<IommuDomain> domain = domainFor(device);
  const int need = write ? iommuprot::kWrite : iommuprot::kRead;
  if (!domain || !domain->dma(iova, need, transaction)) {
    dmarFaultCounter.add();
    dmarFaults_.fetch_add(1, std::memory_order_acq_rel);
    return fail(Errno::kEIO);
  }
  return ok();
}

// The BAR behind `pa`, when it is one whose decode is off: the DMA reaches
// nothing there (invariant 7).
bool Iommu::reachesDecodeOffBar(PhysAddr pa) {
  auto* bar = dynamic_cast<BarRegion*>(machine_.physMemMap().lookup(Pfn::fromPhys(pa)));
  return bar != nullptr && !bar->decodes();
}

Result<uint64_t> Iommu::dmaRead(const PciDevice& device, uint64_t iova, unsigned size) {
  PhysRegion::checkShape(iova, size);
  uint64_t value = 0;
  const Status st = dma(device, iova, false, [&](PhysAddr pa) {
    dmaAccessCounter.add();
    if (reachesDecodeOffBar(pa)) {
      recordViolation(device, iova, false);
      value = allOnes(size);
      return;
    }
    value = machine_.physMemMap().read(pa, size, dmaAccess(pa, false));
  });
  if (!st) return fail(st.error());
  return value;
}

Status Iommu::dmaWrite(const PciDevice& device, uint64_t iova, unsigned size, uint64_t value) {
  PhysRegion::checkShape(iova, size);
  return dma(device, iova, true, [&](PhysAddr pa) {
    dmaAccessCounter.add();
    if (reachesDecodeOffBar(pa)) {
      recordViolation(device, iova, true);
      return;
    }
    machine_.physMemMap().write(pa, size, value, dmaAccess(pa, true));
  });
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
