// A minimal pfnmap driver that behaves like vfio-pci's fault handlers (G2s
// one page per fault; G3.2 huge faults when asked) and its zap under a
// memory lock, so mm behaviour can be tested and measured without vfio.
#pragma once

#include <array>
#include <atomic>

#include "base/page_geometry.h"
#include "mm/address_space.h"
#include "mm/file.h"
#include "mm/pfn_insert.h"
#include "mm/vm_operations.h"
#include "mm/vma.h"
#include "sync/rw_semaphore.h"

namespace vfiomm::testing {

inline const LockClass kFakeMemoryLockClass{"&fake->memory_lock"};

// A "BAR" of `size` bytes at physical `base`, mappable from file offset 0.
class FakeBarFile : public File, public VmOperations {
 public:
  FakeBarFile(PhysAddr base, uint64_t size, bool huge) : base_(base), size_(size), huge_(huge) {}

  AddressSpace* mapping() const override { return &mapping_; }
  bool writable() const override { return writable_; }
  void setWritable(bool w) { writable_ = w; }
  // A file whose ->mmap, unlike vfio's, takes a mapping without VM_SHARED
  // (what MAP_SHARED of a file not open for write gets).
  void setRequireShared(bool r) { requireShared_ = r; }

  Status mmap(Vma& vma) override {
    if (requireShared_ && !(vma.flags() & vm::kShared)) return fail(Errno::kEINVAL);
    if (vma.pgoff().toBytes() + vma.length() > pageAlignUp(size_)) return fail(Errno::kEINVAL);
    vma.flagsSet(vm::kIo | vm::kPfnmap | vm::kDontExpand | vm::kDontDump);
    vma.setPageProt(pgprotNoncached(vma.pageProt()));
    vma.setOps(this);
    return ok();
  }

  bool hasFault() const override { return true; }
  VmFaultResult fault(VmFault& vmf) const override { return hugeFault(vmf, 0); }
  bool hasHugeFault() const override { return huge_; }
  // vfio_pci_mmap_huge_fault() with G3.2's fallback rule.
  VmFaultResult hugeFault(VmFault& vmf, unsigned order) const override {
    calls_[order == 0 ? 0 : order == kPmdOrder ? 1 : 2].fetch_add(1);
    const uint64_t size = kPageSize << order;
    const VirtAddr addr = vmf.address.alignDown(size);
    const Vma& vma = *vmf.vma;
    const Pfn pfn = pfnOf(vma, addr);
    if (order > 0 && (addr < vma.start() || addr + size > vma.end() || !pfn.isAligned(order)))
      return vmfault::kFallback;
    ReadGuard memory(memoryLock_);
    if (!enabled_.load()) return vmfault::kSigbus;
    if (order == 0) return vmfInsertPfn(*vmf.vma, vmf.address, pfnOf(vma, vmf.address));
    VmFault huge = vmf;
    huge.address = addr;
    return order == kPmdOrder ? vmfInsertPfnPmd(huge, pfn, false)
                              : vmfInsertPfnPud(huge, pfn, false);
  }
  void open(Vma& vma) const override {
    opens_.fetch_add(1);
    if (zapOnOpen_) zapVmaPtes(vma, vma.start(), vma.length());
  }
  void close(Vma&) const override { closes_.fetch_add(1); }
  std::string_view name() const override { return "fake-bar"; }

  Pfn pfnOf(const Vma& vma, VirtAddr a) const {
    return Pfn::fromPhys(base_) + vma.pgoff().value() + ((a - vma.start()) >> kPageShift);
  }
  // What vfio's zap does: unmap_mapping_range over the BAR.
  uint64_t zap() { return mapping_.unmapMappingRange(0, 0, true); }
  void setEnabled(bool on) { enabled_.store(on); }
  // vfio_pci_zap_and_down_write_memory_lock() + the state change: no fault
  // can install between the zap and the re-enable.
  void disableAndZap() {
    WriteGuard memory(memoryLock_);
    enabled_.store(false);
    zap();
  }
  void setZapOnOpen(bool on) { zapOnOpen_ = on; }
  uint64_t calls(unsigned order) const {
    return calls_[order == 0 ? 0 : order == kPmdOrder ? 1 : 2].load();
  }
  int opens() const { return opens_.load(); }
  int closes() const { return closes_.load(); }

 private:
  PhysAddr base_;
  uint64_t size_;
  bool huge_;
  bool writable_ = true;
  bool requireShared_ = true;
  bool zapOnOpen_ = false;
  std::atomic<bool> enabled_{true};
  mutable RwSemaphore memoryLock_{kFakeMemoryLockClass};
  mutable AddressSpace mapping_;
  mutable std::array<std::atomic<uint64_t>, 3> calls_{};
  mutable std::atomic<int> opens_{0};
  mutable std::atomic<int> closes_{0};
};

}  // namespace vfiomm::testing
