// Inserting device pfns into page tables (mm-pfnmap.md §6-§8): the per-entry
// vmf_insert_pfn family that faults use, and remap_pfn_range, which fills a
// range at once and must only run with the mmap lock held for write.
#pragma once

#include <cstdint>

#include "base/addr.h"
#include "base/result.h"
#include "mm/page_table.h"
#include "mm/vm_fault.h"

namespace vfiomm {

class Vma;

// Whether an insert tests and sets its entry under the entry's page-table
// lock. Always, in the kernel: insert_pfn() under get_locked_pte(),
// insert_pfn_pmd()/_pud() under pmd_lock()/pud_lock(), the lock that
// __pte_alloc()'s pmd_populate() and every zap of the entry take too, so
// that "the entry is none" still holds when it is set. kSkipped is the
// seeded bug `insert-without-ptl` (DesignOptions): the test and the store
// are two steps, with a scheduling point between them, and a PTE table
// another fault installs in between is overwritten by a huge leaf (two
// entries for one address, and a table nobody frees).
enum class InsertLock : uint8_t { kPtl, kSkipped };

// vmf_insert_pfn(): one special 4 KiB PTE; an entry already there is left
// alone (NOPAGE); outside the VMA -> SIGBUS; no PTE table -> OOM.
VmFaultResult vmfInsertPfn(Vma& vma, VirtAddr addr, Pfn pfn, InsertLock lock = InsertLock::kPtl);
// vmf_insert_pfn_pmd() / _pud(): one special huge leaf for the block holding
// vmf.address. They check neither the block's end nor the pfn's alignment:
// the caller must.
VmFaultResult vmfInsertPfnPmd(VmFault& vmf, Pfn pfn, bool write,
                              InsertLock lock = InsertLock::kPtl);
VmFaultResult vmfInsertPfnPud(VmFault& vmf, Pfn pfn, bool write,
                              InsertLock lock = InsertLock::kPtl);

// remap_pfn_range(): sets VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP (which
// asserts the mmap lock held for write) and fills [addr, addr+size) with
// 4 KiB special PTEs. Populating a present PTE is a kernel BUG.
Status remapPfnRange(Vma& vma, VirtAddr addr, Pfn pfn, uint64_t size, uint64_t prot);
// io_remap_pfn_range(): the same with pgprot_decrypted (a no-op here).
Status ioRemapPfnRange(Vma& vma, VirtAddr addr, Pfn pfn, uint64_t size, uint64_t prot);

// x86 PAT (mm-pfnmap.md §7.1) on the kernels that mark a VMA whose range
// remap_pfn_range() reserved with VM_PAT (6.1-6.15):
// untrack_pfn(): frees a VM_PAT VMA's reservation and clears VM_PAT. With
// `size` 0 (unmap_single_vma()'s call) the range is the one the PTE at
// vm_start maps, as long as the VMA; with no PTE there it WARNs, frees
// nothing and leaves VM_PAT set.
void untrackPfn(Vma& vma, Pfn pfn = Pfn(0), uint64_t size = 0);
// track_pfn_copy(): fork reserves again what VM_PAT VMA `src` maps, for
// the child's copy. EINVAL, with a WARN, when no PTE is at its vm_start.
Status trackPfnCopy(Vma& src);

// Whether a zap shoots down the TLBs of the CPUs that may cache the mm.
// Always, in the kernel: zap_page_range_single() ends in tlb_finish_mmu(),
// and until that flush returns another CPU may still reach the pfn through
// its TLB (the rule mremap broke in CVE-2018-18281, where move_ptes() let
// the PTE lock go before the flush). kSkipped is the seeded bug
// `zap-without-tlb-shootdown` (DesignOptions), which leaves every TLB as it
// was.
enum class ZapFlush : uint8_t { kShootdown, kSkipped };

// zap_page_range_single(): clear [addr, addr+size) of one VMA and flush.
LeafCounts zapPageRangeSingle(Vma& vma, VirtAddr addr, uint64_t size,
                              ZapFlush flush = ZapFlush::kShootdown);
// zap_vma_ptes(): the same, for VM_PFNMAP VMAs only.
void zapVmaPtes(Vma& vma, VirtAddr addr, uint64_t size);

}  // namespace vfiomm
