// The designs vfiomm compares (ARCHITECTURE.md), each owned by one device
// and composed of three policies, one per place the kernels differ:
//  - a FaultPolicy: how ->fault / ->huge_fault fill page tables;
//  - a ZapTracking: how the device's mappings are found and zapped, and in
//    which order memory_lock is taken around the zap;
//  - a RefillPolicy: what brings mappings back after a zap, besides faults.
// Everything else — regions, mmap checks, config emulation, memory_lock,
// resets — is shared, so designs differ only where the kernels differ.
// What a design implies for its results is its row of the designs table.
#pragma once

#include <memory>
#include <string_view>

#include "mm/vm_operations.h"
#include "vfio/design/fault_policy.h"
#include "vfio/design/refill_policy.h"
#include "vfio/design/zap_tracking.h"
#include "vfio/design_table.h"

namespace vfiomm {

class VfioPciCoreDevice;

// The device's vm_operations_struct. Like the kernel's, it is const and
// shared by every VMA of the device; the state its operations change lives
// in the policies, which it owns.
class MappingDesign final : public VmOperations {
 public:
  MappingDesign(DesignKind kind, std::unique_ptr<ZapTracking> tracking,
                std::unique_ptr<RefillPolicy> refill, std::unique_ptr<FaultPolicy> fault);

  DesignKind kind() const { return kind_; }
  std::string_view name() const override { return designName(kind_); }

  // The end of vfio_pci_core_mmap(): what the design sets on the new VMA
  // (vm_pgoff, vm_ops, vm_private_data).
  void setupVma(Vma& vma) const;

  bool hasFault() const override { return true; }
  VmFaultResult fault(VmFault& vmf) const override { return fault_->fault(vmf); }
  bool hasHugeFault() const override { return fault_->hasHugeFault(); }
  VmFaultResult hugeFault(VmFault& vmf, unsigned order) const override {
    return fault_->hugeFault(vmf, order);
  }
  void open(Vma& vma) const override { tracking_->open(vma); }
  void close(Vma& vma) const override { tracking_->close(vma); }

  // What the device asks of its design, answered by the policy that knows
  // (zap_tracking.h, refill_policy.h).
  void zapAndDownWriteMemoryLock() { tracking_->zapAndDownWriteMemoryLock(); }
  bool tryZapAndDownWriteMemoryLock() { return tracking_->tryZapAndDownWriteMemoryLock(); }
  void memoryEnabled() { refill_->memoryEnabled(); }
  void memoryEnabledLocked() { refill_->memoryEnabledLocked(); }

  // The policies, for tests that look inside one.
  ZapTracking& tracking() { return *tracking_; }
  RefillPolicy& refill() { return *refill_; }

 private:
  const DesignKind kind_;
  // Destroyed after the fault policy, which may refer to them.
  const std::unique_ptr<ZapTracking> tracking_;
  const std::unique_ptr<RefillPolicy> refill_;
  const std::unique_ptr<FaultPolicy> fault_;
};

struct DesignOptions {
  // vfio-pci's disable_idle_d3 module parameter: an unopened device stays
  // in D0 instead of runtime-suspending (vfio_pci_core_register_device).
  bool disableIdleD3 = false;
  // G1's ->open zaps, as the kernel did; tests may turn it off to show why.
  bool vmaListZapOnOpen = true;
  // `prefault` only: fill the whole VMA on its first fault too.
  bool prefaultFillOnFirstFault = true;
  // `prefault` only: refill while still holding memory_lock (the naive
  // version lockdep flags; docs/design-prefault.md).
  bool prefaultNaiveUnderMemoryLock = false;
  // Seeded bug (`vfiomm check --mutate fault-without-memory-lock`), the
  // per-page fault (`address-space`) only: the fault handler tests decode
  // and inserts the pfn without holding memory_lock for read. That breaks
  // the rule of vfio_pci_mmap_fault() since 5.8 (commit abafbc551fdd): a
  // fault must hold memory_lock across the check and the insert, or a
  // decode-off write plus zap can run in between and the fault installs a
  // PTE that nobody zaps, so the CPU reaches the BAR with decode off.
  bool faultWithoutMemoryLock = false;
  // Seeded bug (`--mutate zap-before-memory-lock`), the address-space zap
  // (every design but `vma-list`): zap the BARs, then take memory_lock for
  // write, as the 5.8-6.9 vma-list code did before it learned to lock
  // first. The rule of vfio_pci_zap_and_down_write_memory_lock() since
  // 6.10: take the write lock, then zap, so that a fault that ran in
  // between cannot leave a PTE behind for the decode-off window.
  bool zapBeforeMemoryLock = false;
  // Seeded bug (`--mutate zap-without-tlb-shootdown`), the address-space
  // zap: unmap_mapping_range clears the BARs' entries but shoots down no
  // TLB (ZapFlush::kSkipped, mm/pfn_insert.h). It breaks the rule of every
  // zap, that tlb_finish_mmu() flushes the CPUs of the mm before the zap
  // returns (broken by mremap's move_ptes() in CVE-2018-18281): a vCPU whose
  // TLB still holds the BAR reaches it with decode off. Invariant 2 sees it
  // at the zap.
  bool zapWithoutTlbShootdown = false;
  // Seeded bug (`--mutate no-zap-on-d3hot`), the PMCSR write of every
  // design: entering D3hot takes memory_lock for write without zapping. It
  // breaks the rule vfio_pm_config_write() has kept since about 6.0 ("vfio/pci:
  // Invalidate mmaps and block the access in D3hot power state"): a BAR in
  // D3hot decodes nothing, so its mappings must go with the state change,
  // or a later access through a PTE left behind reaches it.
  bool noZapOnD3hot = false;
  // Seeded bug (`--mutate hot-reset-zaps-requester-only`), the dev_set's hot
  // reset: only the device whose fd got VFIO_DEVICE_PCI_HOT_RESET is
  // zapped; the other devices of the dev_set get memory_lock for write
  // without a zap. It breaks the rule of vfio_pci_dev_set_hot_reset()
  // since 5.8 (commit abafbc551fdd): the bus reset clears every function's
  // COMMAND register, so every device of the set is zapped under its lock.
  bool hotResetZapsRequesterOnly = false;
  // Seeded bug (`--mutate insert-without-ptl`), the huge fault (`huge-fault`
  // and `prefault`): vmf_insert_pfn() and vmf_insert_pfn_pmd()/_pud() test
  // and set their entry without the page-table lock (InsertLock::kSkipped,
  // mm/pfn_insert.h). It breaks the rule of insert_pfn() and
  // insert_pfn_pmd(), which test pte_none()/pmd_none() and set the entry
  // under get_locked_pte()/pmd_lock(): a 4 KiB fault that installs a PTE
  // table in the PMD between the huge fault's test and its store is
  // overwritten, so the address has two entries and the PTE table is never
  // freed (invariant 6 at exit, the kernel's "non-zero pgtables_bytes on
  // freeing mm").
  bool insertWithoutPtl = false;
  // Seeded bug (`--mutate fork-copies-before-link`), fork in mm, whatever the
  // design: the child's VMA is linked into the device's i_mmap tree after
  // its entries were copied. The kernel copies it into the child's
  // MmProfile (MmProfile::forkCopiesBeforeLink says which rule it breaks).
  bool forkCopiesBeforeLink = false;
  // Seeded bug (`--mutate gather-without-nested-flush`), the mmu_gather in
  // mm, whatever the design: no whole-mm flush when gathers overlap
  // (MmProfile::gatherWithoutNestedFlush says which rule it breaks).
  bool gatherWithoutNestedFlush = false;
  // Seeded bug (`--mutate fault-retry-reuses-vma`), the fault path in mm,
  // whatever the design: the retry after the per-VMA-lock attempt reuses
  // that attempt's VMA (MmProfile::faultRetryReusesVma says which rule it
  // breaks). Through `huge-fault` it is the G3 huge_fault handler, at order
  // 0, that maps the range a munmap just removed.
  bool faultRetryReusesVma = false;
  // A PROPOSAL, not merged in any kernel (Matt Evans, "vfio/pci: dma-buf
  // mmap and revoke", RFC Feb 2026 .. v3 Jun 2026; dma-mapping.md §4.4),
  // an option of the dma-buf design on a 6.19 profile: a vfio dma-buf fd
  // can be mmapped (VM_IO|VM_PFNMAP, faults SIGBUS while it is revoked,
  // every revoke zaps the mappings), and VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE
  // revokes one buffer for good (VFIO_PCI_DMABUF_PERM_REVOKED): attach,
  // import and mmap are -ENODEV afterwards. Set through
  // KernelConfig::designOptions; no command-line flag selects it yet.
  bool proposalDmabufMmapRevoke = false;
  // A PROPOSAL, not merged (the same series, dma-mapping.md §4.4), an
  // option of the dma-buf design on a 6.19 profile: an mmap of a BAR of the
  // device fd becomes a mapping of a dma-buf the mmap exports for that BAR
  // (vm_file is the dma-buf, /proc/pid/maps names it `/dmabuf:` with the
  // BDF and BAR); faults go through the dma-buf (4 KiB, SIGBUS while it is
  // revoked) and every zap trigger revokes it and zaps through the
  // dma-buf's address space; re-enabling makes it usable again.
  bool proposalBarMmapDmabuf = false;
};

std::unique_ptr<MappingDesign> makeDesign(DesignKind kind, VfioPciCoreDevice& vdev,
                                          const DesignOptions& options);

}  // namespace vfiomm
