// PageTable: one mm's x86-64 4-level page table (pgd_t *mm->pgd and all that
// hangs below it), with the kernel's locking:
//  - PGD and PUD entries change under mm->page_table_lock (x86-64 has no
//    split PUD lock);
//  - PMD entries change under the PMD table's split lock (pmd_lock);
//  - PTE entries change under the PTE table's split lock (pte_offset_map_lock).
// Readers that model hardware (the MMU walk) read entries without any lock.
//
// Tables are allocated on demand and freed only by freePgtables() (munmap,
// exit), never by a zap, as in the kernel. A huge leaf that a range boundary
// cuts is "split", which for special (pfnmap) entries means cleared.
//
// Every range walk is an operation over the one walker, walk()
// (mm/page_table_walk.h); the lookups of one address, the MMU's translate()
// and slotAt(), are loops of their own (why: page_table.cc).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "base/addr.h"
#include "base/page_geometry.h"
#include "hw/page_table_arena.h"
#include "mm/pte.h"
#include "sync/spin_lock.h"

namespace vfiomm {

class MmuGather;

inline const LockClass kPageTableLockClass{"&mm->page_table_lock"};

// Entries a walker changed, by level of the leaf.
struct LeafCounts {
  uint64_t pte = 0;
  uint64_t pmd = 0;
  uint64_t pud = 0;
  uint64_t total() const { return pte + pmd + pud; }
  LeafCounts& operator+=(const LeafCounts& o) {
    pte += o.pte;
    pmd += o.pmd;
    pud += o.pud;
    return *this;
  }
};

class PageTable {
 public:
  // Tables come from `arena`, the machine's (Machine::pageTableArena()).
  explicit PageTable(PageTableArena& arena);
  ~PageTable();  // frees every table: the end of exit_mmap()
  PageTable(const PageTable&) = delete;
  PageTable& operator=(const PageTable&) = delete;

  // --- the MMU's view -------------------------------------------------------
  struct Translation {
    bool present = false;
    PtLevel level = PtLevel::kPte;  // level of the leaf
    uint64_t entry = 0;             // the leaf entry
    Pfn pfn;                        // frame of the 4 KiB page holding the address
  };
  // Lockless walk, as the hardware does it (not over walk(): see the .cc).
  Translation translate(VirtAddr va) const;

  // --- the fault path's view ------------------------------------------------
  struct Slot {
    std::atomic<uint64_t>* entry = nullptr;
    PageTablePage* table = nullptr;  // the table holding `entry`
    PtLevel level = PtLevel::kPte;
  };
  enum class WalkStatus { kOk, kNoMem, kHugeAbove, kAbsent };
  // The slot for `va` at `level` (pud_alloc / pmd_alloc / pte_alloc_map). With
  // `alloc`, missing tables are allocated and installed under the lock that
  // protects their parent entry; without it a missing table is kAbsent. A huge
  // leaf above `level` stops the walk with kHugeAbove.
  WalkStatus slotAt(VirtAddr va, PtLevel level, bool alloc, Slot* out);
  // One level of that: the slot for `va` in the table the directory entry
  // `dir` points to, as __handle_mm_fault() goes from vmf->pud to vmf->pmd
  // (pmd_alloc) and on to the PTE without walking from the PGD again.
  WalkStatus slotBelow(const Slot& dir, VirtAddr va, bool alloc, Slot* out);
  // The lock that protects the entries of the slot's table.
  SpinLock& ptlFor(const Slot& slot);
  SpinLock& pageTableLock() { return pageTableLock_; }

  // --- walkers used by the mm operations ------------------------------------
  // Descend once over the tables [start, end) overlaps, calling the hooks of
  // `op` (a PageTableOperation); defined in mm/page_table_walk.h.
  template <class Op>
  WalkStatus walk(VirtAddr start, VirtAddr end, Op& op);
  // zap_page_range_single's walk: clear every leaf in [start, end), clearing
  // huge leaves the range only partly covers (counted as THP_SPLIT_*).
  LeafCounts zapRange(VirtAddr start, VirtAddr end, MmuGather& tlb);
  // Clear a huge leaf that maps `addr` without covering [addr & ~(size-1), addr)
  // entirely, i.e. one a VMA boundary at `addr` would cut (split_huge_pmd/pud).
  void splitHugeAt(VirtAddr addr, MmuGather& tlb);
  // copy_page_range for fork: copy the leaves of [start, end) into `dst`,
  // marked old. kNoMem leaves the copy partial, as the kernel does.
  WalkStatus copyRange(PageTable& dst, VirtAddr start, VirtAddr end) const;
  // move_page_tables for mremap: leaves of [from, from+len) go to [to, to+len).
  // Huge leaves move whole when source and destination are both aligned;
  // otherwise they are split (cleared) first.
  WalkStatus moveRange(VirtAddr from, VirtAddr to, uint64_t len, MmuGather& tlb);
  // change_protection: rewrite the protection bits of every leaf in range.
  LeafCounts changeProtection(VirtAddr start, VirtAddr end, uint64_t prot, MmuGather& tlb);
  // free_pgd_range: free the tables below [start, end) whose whole span lies
  // in [floor, ceiling) — the hole left between the neighbouring VMAs.
  void freePgtables(VirtAddr start, VirtAddr end, VirtAddr floor, VirtAddr ceiling, MmuGather& tlb);

  // Visit every present leaf overlapping [start, end) (tests and monitors).
  void forEachLeaf(VirtAddr start, VirtAddr end,
                   const std::function<void(VirtAddr, PtLevel, uint64_t)>& fn) const;

  // mm_pgtables_bytes(): PTE, PMD and PUD table pages (the PGD is the mm's own).
  uint64_t pgtablesBytes() const { return pgtablesBytes_.load(std::memory_order_relaxed); }
  uint64_t tablePages(PtLevel level) const;
  // Host memory the tables take, descriptors included.
  uint64_t hostBytes() const;

  // Fault injection: when set and returning true for a level, allocating a
  // table of that level fails (FAULT-09).
  void setAllocFailure(std::function<bool(PtLevel)> fails) { allocFails_ = std::move(fails); }

 private:
  // The operations that free tables, and so reach the accounting.
  class FreeTablesOp;
  class FreeEveryTableOp;

  template <PtLevel L, class Op>
  WalkStatus walkLevel(PageTablePage* table, VirtAddr base, VirtAddr start, VirtAddr end, Op& op);
  // __pud_alloc / __pmd_alloc / __pte_alloc for the empty entry `slot`: the
  // entry it then holds (the new table, or what a racing fault put there),
  // or none when no table could be allocated. By value, so that the walks'
  // entries stay in registers.
  uint64_t allocTableFor(Slot slot);
  // The step of slotAt() and slotBelow(): the table below `dir`.
  WalkStatus tableBelow(const Slot& dir, bool alloc, PageTablePage** table);
  // Where this class takes table pages from the arena and gives them back.
  PageTablePage* allocTable(PtLevel level);
  void freeTable(PageTablePage* table, PtLevel level);
  void accountTable(PtLevel level, int delta);
  SpinLock& lockForTable(PageTablePage* table, PtLevel level);

  PageTableArena& arena_;
  SpinLock pageTableLock_{kPageTableLockClass};  // mm->page_table_lock
  PageTablePage* pgd_ = nullptr;                 // by allocTable(), once allocFails_ exists
  std::atomic<uint64_t> pgtablesBytes_{0};
  std::array<std::atomic<uint64_t>, 4> tablePages_{};
  std::function<bool(PtLevel)> allocFails_;
};

}  // namespace vfiomm
