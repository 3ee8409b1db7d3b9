// The designs vfiomm compares (ARCHITECTURE.md): each is a strategy object
// owned by one device, deciding how faults fill page tables and how the
// device's mappings are found and zapped. Everything else — regions, mmap
// checks, config emulation, memory_lock, resets — is shared, so designs
// differ only where the kernels differ.
#pragma once

#include <memory>
#include <string_view>

#include "base/result.h"
#include "mm/vm_operations.h"
#include "sync/thread_annotations.h"
#include "vfio/design_table.h"

namespace vfiomm {

class VfioPciCoreDevice;

class MappingDesign : public VmOperations {
 public:
  explicit MappingDesign(VfioPciCoreDevice& vdev) : vdev_(vdev) {}

  virtual DesignKind kind() const = 0;
  std::string_view name() const override { return designName(kind()); }

  // The end of vfio_pci_core_mmap(): what the design sets on the new VMA
  // (vm_pgoff, vm_ops, vm_private_data).
  virtual void setupVma(Vma& vma) const;
  // vfio_pci_zap_bars(): remove every mapping of BAR0-5 in every process.
  virtual void zapBars() = 0;
  // vfio_pci_zap_and_down_write_memory_lock(): returns with memory_lock
  // held for write and no mapping of a BAR left.
  virtual void zapAndDownWriteMemoryLock() = 0;
  // The hot-reset step for one device: trylock its memory_lock for write
  // and zap; false (nothing held) on contention.
  virtual bool tryZapAndDownWriteMemoryLock() = 0;
  // Memory decode came back (the state change is done and memory_lock is
  // no longer held). Only `prefault` acts on it.
  virtual void memoryEnabled() {}
  // The same moment, still inside the memory_lock write section (only the
  // naive prefault variant uses it, to show why it must not).
  virtual void memoryEnabledLocked() {}

 protected:
  VfioPciCoreDevice& vdev_;
};

struct DesignOptions {
  // G1's ->open zaps, as the kernel did; tests may turn it off to show why.
  bool vmaListZapOnOpen = true;
  // `prefault` only: fill the whole VMA on its first fault too.
  bool prefaultFillOnFirstFault = true;
  // `prefault` only: refill while still holding memory_lock (the naive
  // version lockdep flags; docs/design-prefault.md).
  bool prefaultNaiveUnderMemoryLock = false;
  // Seeded bug (`vfiomm check --mutate fault-without-memory-lock`),
  // `address-space` only: the fault handler tests decode and inserts the
  // pfn without holding memory_lock for read. That breaks the rule of
  // vfio_pci_mmap_fault() since 5.8 (commit abafbc551fdd): a fault must
  // hold memory_lock across the check and the insert, or a decode-off
  // write plus zap can run in between and the fault installs a PTE that
  // nobody zaps, so the CPU reaches the BAR with decode off.
  bool faultWithoutMemoryLock = false;
  // Seeded bug (`--mutate zap-before-memory-lock`), `address-space` only:
  // zap the BARs, then take memory_lock for write, as the 5.8-6.9 vma-list
  // code did before it learned to lock first. The rule of
  // vfio_pci_zap_and_down_write_memory_lock() since 6.10: take the write
  // lock, then zap, so that a fault that ran in between cannot leave a PTE
  // behind for the decode-off window.
  bool zapBeforeMemoryLock = false;
};

std::unique_ptr<MappingDesign> makeDesign(DesignKind kind, VfioPciCoreDevice& vdev,
                                          const DesignOptions& options);

}  // namespace vfiomm
