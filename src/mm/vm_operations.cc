#include "mm/vm_operations.h"

namespace vfiomm {

VmFaultResult VmOperations::fault(VmFault&) const { return vmfault::kSigbus; }
VmFaultResult VmOperations::hugeFault(VmFault&, unsigned) const { return vmfault::kFallback; }
void VmOperations::open(Vma&) const {}
void VmOperations::close(Vma&) const {}
Status VmOperations::maySplit(Vma&, VirtAddr) const { return ok(); }
Status VmOperations::mremap(Vma&) const { return ok(); }

}  // namespace vfiomm
