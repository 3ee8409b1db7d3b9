// vm_operations_struct: how a driver (vfio-pci) plugs into a VMA. mm calls
// these; it never knows which driver is behind them.
#pragma once

#include <string_view>

#include "base/addr.h"
#include "base/result.h"
#include "mm/vm_fault.h"

namespace vfiomm {

class Vma;

class VmOperations {
 public:
  virtual ~VmOperations() = default;

  // ->fault. A VMA whose ops have none gets VM_FAULT_SIGBUS (do_fault).
  virtual bool hasFault() const { return false; }
  virtual VmFaultResult fault(VmFault& vmf) const;
  // ->huge_fault(vmf, order); without it huge orders are never tried.
  virtual bool hasHugeFault() const { return false; }
  virtual VmFaultResult hugeFault(VmFault& vmf, unsigned order) const;
  // ->open: a new VMA structure was copied from an existing one (fork child,
  // new piece of a split, mremap destination). ->close: the VMA goes away.
  virtual void open(Vma& vma) const;
  virtual void close(Vma& vma) const;
  // ->may_split: may the VMA be split at `addr`? (-EINVAL vetoes)
  virtual Status maySplit(Vma& vma, VirtAddr addr) const;
  // ->mremap: the VMA is being moved.
  virtual Status mremap(Vma& vma) const;

  virtual std::string_view name() const = 0;
};

}  // namespace vfiomm
