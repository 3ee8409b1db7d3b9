#include "mm/task.h"

#include "mm/fault.h"
#include "mm/mm.h"

namespace vfiomm {

MmuContext* Task::mmuContext() { return mm; }

SigInfo Task::pageFault(VirtAddr va, FaultAccess access) {
  return doUserAddrFault(*this, va, access);
}

}  // namespace vfiomm
