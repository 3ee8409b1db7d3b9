// How a design finds the device's mappings to zap them, and the order in
// which it takes memory_lock around the zap: vfio_pci_zap_bars() and
// vfio_pci_zap_and_down_write_memory_lock(), with the VMA bookkeeping
// (mmap, ->open, ->close) that the finding relies on.
#pragma once

namespace vfiomm {

class Vma;

class ZapTracking {
 public:
  virtual ~ZapTracking() = default;

  // The end of vfio_pci_core_mmap(), before vm_ops is set: by default
  // vm_pgoff stays the file offset, which i_mmap is keyed by.
  virtual void setupVma(Vma& vma) { (void)vma; }
  // ->open and ->close: a tracking that keeps its own record of VMAs
  // updates it; i_mmap follows every VMA by itself.
  virtual void open(Vma& vma) { (void)vma; }
  virtual void close(Vma& vma) { (void)vma; }

  // vfio_pci_zap_and_down_write_memory_lock(): returns with memory_lock
  // held for write and no mapping of a BAR (BAR0-5) left in any process.
  virtual void zapAndDownWriteMemoryLock() = 0;
  // The hot-reset step for one device: trylock its memory_lock for write
  // and zap; false (nothing held) on contention.
  virtual bool tryZapAndDownWriteMemoryLock() = 0;
};

}  // namespace vfiomm
