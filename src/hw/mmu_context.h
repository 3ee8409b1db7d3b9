// The two things the hardware model knows of the kernel that runs on it,
// as x86 knows them: the page tables CR3 points at (with their PCID), which
// the MMU walks on a TLB miss, and the #PF vector, which a refused user
// access traps to. mm/ provides both (Mm, Task); hw/ reads no kernel data
// structure.
#pragma once

#include <cstdint>

#include "base/addr.h"
#include "base/page_geometry.h"
#include "hw/trap.h"

namespace vfiomm {

// An address space as the MMU sees it: CR3 plus PCID.
class MmuContext {
 public:
  // What a hardware walk finds at a present leaf.
  struct Leaf {
    bool present = false;
    bool user = false;  // U/S
    bool writable = false;
    PtLevel level = PtLevel::kPte;
    Pfn pfn;  // of `va`'s page within the leaf
  };

  // The tag this address space's translations carry in every TLB (PCID).
  virtual uint64_t asid() const = 0;
  // switch_mm: `cpu` joins the address space's cpumask before it can cache
  // any of its translations, so every later flush reaches it.
  virtual void noteCpu(unsigned cpu) = 0;
  // The hardware walk of `va`: no lock taken, as the MMU takes none.
  virtual Leaf walk(VirtAddr va) = 0;

 protected:
  MmuContext() = default;
  ~MmuContext() = default;
  MmuContext(const MmuContext&) = default;
  MmuContext& operator=(const MmuContext&) = default;
};

// A user thread as the CPU runs it: its address space, and the kernel's
// page-fault handler for its refused accesses.
class UserContext {
 public:
  // The address space it runs in; null: a kernel thread (no user access).
  virtual MmuContext* mmuContext() = 0;
  // The #PF exception (do_user_addr_fault). No signal: retry the access.
  virtual SigInfo pageFault(VirtAddr va, FaultAccess access) = 0;

 protected:
  UserContext() = default;
  ~UserContext() = default;
  UserContext(const UserContext&) = default;
  UserContext& operator=(const UserContext&) = default;
};

}  // namespace vfiomm
