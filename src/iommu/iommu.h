// Iommu: the DMA remapping hardware in front of every PCI device (one VT-d
// unit for the whole host, as on a typical x86 server) and the iommu core
// calls the vfio drivers make on it: allocate a domain, attach a device's
// group to it, detach. Device DMA goes through here: the device's domain
// translates the IOVA, and the access then reaches whatever decodes the
// physical address — host RAM or another device's BAR (peer-to-peer).
//
// Invariant 7: no DMA reaches a BAR whose memory decode is off. Unlike
// invariant 1 (CPU accesses, recorded by the BarRegion) the record names the
// device that issued the DMA and the IOVA it used, because the hazard is an
// IOPTE that outlived the CPU-side zap (type1 keeps them, dma-mapping.md
// §2.6). Such a DMA reads all ones and its write is dropped, as for a CPU.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "iommu/iommu_domain.h"

namespace vfiomm {

class Machine;
class PciDevice;

// An inclusive IOVA range, as the IOVA_RANGE capability reports them.
struct IovaRange {
  uint64_t start = 0;
  uint64_t last = 0;
};

struct IommuConfig {
  // 4K|2M|1G: VT-d second-level tables with 1 GiB page support.
  uint64_t pgsizeBitmap = 0x4020'1000;
  // A 48-bit address width (4-level tables).
  uint64_t apertureLast = (uint64_t{1} << 48) - 1;
  // The x86 MSI window every group reserves (IOMMU_RESV_MSI).
  std::vector<IovaRange> reserved{{0xFEE0'0000, 0xFEEF'FFFF}};
};

struct DmaDecodeViolation {
  std::string device;  // pci_name() of the device that issued the DMA
  uint64_t iova = 0;
  bool isWrite = false;
  uint64_t time = 0;  // trace clock
};

class Iommu {
 public:
  static constexpr size_t kMaxKeptViolations = 1024;

  Iommu(Machine& machine, IommuConfig config = {});
  Iommu(const Iommu&) = delete;
  Iommu& operator=(const Iommu&) = delete;

  const IommuConfig& config() const { return config_; }
  // The aperture minus the reserved regions, in address order
  // (iommu_get_group_resv_regions() applied to the domain's geometry).
  std::vector<IovaRange> validIovaRanges() const;

  // iommu_paging_domain_alloc().
  std::shared_ptr<IommuDomain> allocDomain() const;
  // iommu_attach_group()/iommu_detach_group() for one device: from then on
  // its DMA is translated by `domain`; without a domain it is blocked.
  void attachDevice(const PciDevice& device, std::shared_ptr<IommuDomain> domain);
  void detachDevice(const PciDevice& device);
  // iommu_get_domain_for_dev(): the domain translating `device`'s DMA, or
  // nullptr when it is blocked.
  std::shared_ptr<IommuDomain> domainFor(const PciDevice& device) const;

  // A DMA read or write of 1, 2, 4 or 8 bytes by `device` at `iova`.
  // -EIO: the IOMMU blocked it (no domain, no IOPTE, or a write through a
  // read-only one), a DMAR fault the device sees as an aborted request.
  Result<uint64_t> dmaRead(const PciDevice& device, uint64_t iova, unsigned size);
  Status dmaWrite(const PciDevice& device, uint64_t iova, unsigned size, uint64_t value);

  uint64_t dmarFaultCount() const { return dmarFaults_.load(std::memory_order_acquire); }
  // Invariant 7.
  uint64_t dmaDecodeViolationCount() const {
    return violationCount_.load(std::memory_order_acquire);
  }
  std::vector<DmaDecodeViolation> dmaDecodeViolations() const;

 private:
  // The physical address `iova` reaches for `device`, or -EIO.
  // One DMA transaction of `device` through its domain; -EIO (a DMAR
  // fault, counted) when no IOPTE allows it.
  template <class Transaction>
  Status dma(const PciDevice& device, uint64_t iova, bool write, Transaction&& transaction);
  bool reachesDecodeOffBar(PhysAddr pa);
  void recordViolation(const PciDevice& device, uint64_t iova, bool write);

  Machine& machine_;
  const IommuConfig config_;
  // Not model locks: they stand for the hardware's context-entry lookup and
  // for the bookkeeping of the monitor's list.
  mutable std::mutex attachMu_;
  std::map<const PciDevice*, std::shared_ptr<IommuDomain>> attached_;
  std::atomic<uint64_t> dmarFaults_{0};
  std::atomic<uint64_t> violationCount_{0};
  mutable std::mutex violationsMu_;
  std::vector<DmaDecodeViolation> violations_;
};

}  // namespace vfiomm
