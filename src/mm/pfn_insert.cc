#include "mm/pfn_insert.h"

#include "base/assert.h"
#include "base/counter.h"
#include "mm/mm.h"
#include "mm/mmu_gather.h"
#include "mm/page_table_walk.h"
#include "mm/pat_memtype.h"
#include "mm/vma.h"
#include "sync/sched_hook.h"
#include "trace/tracer.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(insertPte, "mm.pfn_insert.pte", "special 4 KiB PTEs installed");
VFIOMM_COUNTER(insertPmd, "mm.pfn_insert.pmd", "special 2 MiB PMD leaves installed");
VFIOMM_COUNTER(insertPud, "mm.pfn_insert.pud", "special 1 GiB PUD leaves installed");
VFIOMM_COUNTER(untrackNoPte, "mm.untrack_pfn.no_pte",
               "untrack_pfn() of a VM_PAT VMA with no PTE at vm_start (its WARN_ON_ONCE)");
VFIOMM_COUNTER(zapCalls, "mm.zap.calls", "zap_page_range_single calls");
VFIOMM_COUNTER(zapPte, "mm.zap.pte", "PTEs cleared by zaps");
VFIOMM_COUNTER(zapPmd, "mm.zap.pmd", "PMD leaves cleared by zaps");
VFIOMM_COUNTER(zapPud, "mm.zap.pud", "PUD leaves cleared by zaps");

// The kernel BUGs these; the model treats them as its own bugs.
void checkPfnmapVma(const Vma& vma) {
  const VmFlags f = vma.flags();
  VFIOMM_ASSERT_MSG((f & (vm::kPfnmap | vm::kMixedmap)) != 0, "insert into a non-pfnmap VMA");
  VFIOMM_ASSERT_MSG((f & (vm::kPfnmap | vm::kMixedmap)) != (vm::kPfnmap | vm::kMixedmap),
                    "VMA is both PFNMAP and MIXEDMAP");
  VFIOMM_ASSERT_MSG(!((f & vm::kPfnmap) && vma.isCowMapping()), "PFNMAP on a COW mapping");
}

void traceInsert(VirtAddr addr, Pfn pfn, PtLevel level) {
  trace::Tracer& t = trace::Tracer::current();
  trace::TraceEvent e;
  e.kind = trace::EventKind::kPfnInsert;
  e.ts = t.now();
  e.addr = addr.value();
  e.end = pfn.value();
  e.order = static_cast<uint8_t>(levelOrder(level));
  t.record(e);
}

uint64_t writeBits(bool write) { return write ? (pte::kAccessed | pte::kDirty) : pte::kAccessed; }

// Runs `testAndSet` under the page-table lock of `slot`, or, for the seeded
// bug InsertLock::kSkipped, without it: another fault may then change the
// entry between the test and the store, at the store's scheduling point.
template <typename Fn>
VmFaultResult underPtl(PageTable& pt, const PageTable::Slot& slot, InsertLock lock,
                       Fn&& testAndSet) {
  if (lock == InsertLock::kSkipped) [[unlikely]]
    return testAndSet();
  SpinGuard guard(pt.ptlFor(slot));
  return testAndSet();
}

VmFaultResult insertHuge(VmFault& vmf, Pfn pfn, bool write, PtLevel level, InsertLock lock) {
  Vma& vma = *vmf.vma;
  checkPfnmapVma(vma);
  const VirtAddr addr = vmf.address.alignDown(levelSize(level));
  if (addr < vma.start() || addr >= vma.end()) return vmfault::kSigbus;
  PageTable& pt = vma.mm().pageTable();
  PageTable::Slot slot;
  switch (pt.slotAt(addr, level, true, &slot)) {
    case PageTable::WalkStatus::kOk: break;
    case PageTable::WalkStatus::kHugeAbove: return vmfault::kNoPage;
    default: return vmfault::kOom;
  }
  return underPtl(pt, slot, lock, [&] {
    const uint64_t cur = slot.entry->load(std::memory_order_relaxed);
    if (!pte::isNone(cur)) {
      // A table or a leaf is already there: change nothing, let the access
      // retry (and refault at a smaller size if it still misses).
      if (write && pte::isHugeLeaf(cur) && pte::pfnOf(cur) == pfn)
        slot.entry->store(cur | writeBits(true), std::memory_order_release);
      return vmfault::kNoPage;
    }
    // set_pmd_at()/set_pud_at() of insert_pfn_pmd()/insert_pfn_pud(): other
    // CPUs' walks take no lock, so they may run on either side of the store
    // (and, without the PTL, another fault between the test and the store).
    schedPoint(level == PtLevel::kPmd ? "pmd.store" : "pud.store");
    slot.entry->store(pte::makeLeaf(pfn, vma.pageProt(), true) | writeBits(write),
                      std::memory_order_release);
    (level == PtLevel::kPmd ? insertPmd : insertPud).add();
    if (trace::enabled()) [[unlikely]]
      traceInsert(addr, pfn, level);
    return vmfault::kNoPage;
  });
}

// remap_pfn_range's walk: missing tables allocated, and each PTE table
// filled under one hold of its lock, as remap_pte_range() does. A huge leaf
// where a PTE table should be leaves nothing to fill, like a failed
// allocation (get_locked_pte).
class RemapPfnRange : public PageTableOperation {
 public:
  RemapPfnRange(PageTable& pt, VirtAddr addr, Pfn pfn, uint64_t prot)
      : pt_(pt), filledUpTo_(addr), pfn_(pfn), prot_(prot) {}

  static constexpr bool allocates() { return true; }
  static WalkStatus onHugeLeaf(const Slot&, VirtAddr, uint64_t) { return WalkStatus::kHugeAbove; }
  WalkStatus onEntries(const TableEntries& r) {
    const unsigned n = r.last - r.first;
    {
      SpinGuard guard(pt_.ptlFor(r.slot(r.first)));
      for (unsigned i = 0; i < n; ++i) {
        std::atomic<uint64_t>& entry = r.table->entries[r.first + i];
        VFIOMM_ASSERT_MSG(pte::isNone(entry.load(std::memory_order_relaxed)),
                          "remap_pfn_range: PTE not none (kernel BUG in remap_pte_range)");
        entry.store(pte::makeLeaf(pfn_ + i, prot_, false), std::memory_order_release);
        if (trace::enabled()) [[unlikely]]
          traceInsert(r.addressOf(r.first + i), pfn_ + i, PtLevel::kPte);
      }
    }
    insertPte.add(n);
    filledUpTo_ = r.addressOf(r.last);
    pfn_ = pfn_ + n;
    return WalkStatus::kOk;
  }
  // Where the walk stopped: the entries below are mapped.
  VirtAddr filledUpTo() const { return filledUpTo_; }

 private:
  PageTable& pt_;
  VirtAddr filledUpTo_;
  Pfn pfn_;
  const uint64_t prot_;
};

}  // namespace

VmFaultResult vmfInsertPfn(Vma& vma, VirtAddr addr, Pfn pfn, InsertLock lock) {
  checkPfnmapVma(vma);
  if (addr < vma.start() || addr >= vma.end()) return vmfault::kSigbus;
  PageTable& pt = vma.mm().pageTable();
  PageTable::Slot slot;
  // get_locked_pte(): a failed allocation, or a huge leaf a racing fault put
  // in the PMD, leaves no PTE to lock.
  if (pt.slotAt(addr, PtLevel::kPte, true, &slot) != PageTable::WalkStatus::kOk)
    return vmfault::kOom;
  return underPtl(pt, slot, lock, [&] {
    if (!pte::isNone(slot.entry->load(std::memory_order_relaxed))) return vmfault::kNoPage;
    // set_pte_at() of insert_pfn(): the same window as the huge stores'.
    schedPoint("pte.store");
    slot.entry->store(pte::makeLeaf(pfn, vma.pageProt(), false) | pte::kAccessed,
                      std::memory_order_release);
    insertPte.add();
    if (trace::enabled()) [[unlikely]]
      traceInsert(addr, pfn, PtLevel::kPte);
    return vmfault::kNoPage;
  });
}

VmFaultResult vmfInsertPfnPmd(VmFault& vmf, Pfn pfn, bool write, InsertLock lock) {
  return insertHuge(vmf, pfn, write, PtLevel::kPmd, lock);
}

VmFaultResult vmfInsertPfnPud(VmFault& vmf, Pfn pfn, bool write, InsertLock lock) {
  return insertHuge(vmf, pfn, write, PtLevel::kPud, lock);
}

Status remapPfnRange(Vma& vma, VirtAddr addr, Pfn pfn, uint64_t size, uint64_t prot) {
  if (!addr.isAligned(kPageSize)) return fail(Errno::kEINVAL);
  const VirtAddr end = addr + pageAlignUp(size);
  if (vma.isCowMapping()) {
    if (addr != vma.start() || end != vma.end()) return fail(Errno::kEINVAL);
    vma.setPgoff(PgOff(pfn.value()));
  }
  // track_pfn_remap(): a reservation of the whole VMA is remembered with
  // VM_PAT (smaps `ar`, mm-pfnmap.md §7.1); a part only looks its memtype up.
  const bool pat = vma.mm().profile().vmPatOnFill && addr == vma.start() && end == vma.end();
  if (PatMemtype* memtype = vma.mm().patMemtype(); pat && memtype != nullptr)
    memtype->reserve(pfn.toPhys(), pfn.toPhys() + (end - addr));
  // The assertion the seed series is about (mm-pfnmap.md §7 step 4).
  vma.flagsSet(vm::kIo | vm::kPfnmap | vm::kDontExpand | vm::kDontDump | (pat ? vm::kPat : 0));
  PageTable& pt = vma.mm().pageTable();
  RemapPfnRange op(pt, addr, pfn, prot);
  if (pt.walk(addr, end, op) != PageTable::WalkStatus::kOk) {
    // The partial fill is zapped, whose untrack_pfn() frees the
    // reservation when the fill reached vm_start; then the reservation is
    // undone by the pfn, unless that zap cleared VM_PAT.
    zapPageRangeSingle(vma, addr, op.filledUpTo() - addr);
    untrackPfn(vma, pfn, end - addr);
    return fail(Errno::kENOMEM);
  }
  return ok();
}

Status ioRemapPfnRange(Vma& vma, VirtAddr addr, Pfn pfn, uint64_t size, uint64_t prot) {
  return remapPfnRange(vma, addr, pfn, size, prot);
}

void untrackPfn(Vma& vma, Pfn pfn, uint64_t size) {
  if (!(vma.flags() & vm::kPat)) return;
  PatMemtype* memtype = vma.mm().patMemtype();
  if (size == 0) {
    const PageTable::Translation t = vma.mm().pageTable().translate(vma.start());
    if (!t.present) {
      untrackNoPte.add();
      if (memtype != nullptr) memtype->warnOnce(PatMemtype::WarnSite::kUntrackPfn);
      return;
    }
    pfn = t.pfn;
    size = vma.end() - vma.start();
  }
  if (memtype != nullptr) memtype->free(pfn.toPhys(), pfn.toPhys() + size);
  vma.flagsClearUnchecked(vm::kPat);
}

Status trackPfnCopy(Vma& src) {
  PatMemtype* memtype = src.mm().patMemtype();
  if (!(src.flags() & vm::kPat) || memtype == nullptr) return ok();
  const PageTable::Translation t = src.mm().pageTable().translate(src.start());
  if (!t.present) {
    memtype->warnOnce(PatMemtype::WarnSite::kTrackPfnCopy);
    return fail(Errno::kEINVAL);
  }
  memtype->reserve(t.pfn.toPhys(), t.pfn.toPhys() + (src.end() - src.start()));
  return ok();
}

namespace {

// The entries of [addr, addr+size) go into `tlb`, which flushes them.
LeafCounts clearAndFlush(Vma& vma, VirtAddr addr, uint64_t size, MmuGather& tlb) {
  const LeafCounts cleared = vma.mm().pageTable().zapRange(addr, addr + size, tlb);
  tlb.finish();
  return cleared;
}

LeafCounts zapPageRangeSingleUntraced(Vma& vma, VirtAddr addr, uint64_t size, ZapFlush flush) {
  untrackPfn(vma);  // unmap_single_vma()'s, before the entries go
  LeafCounts cleared;
  if (flush == ZapFlush::kSkipped) [[unlikely]] {
    MmuGather noShootdown{TlbFlushFn{}};  // the seeded bug: no CPU is flushed
    cleared = clearAndFlush(vma, addr, size, noShootdown);
  } else {
    MmuGather tlb(vma.mm());
    cleared = clearAndFlush(vma, addr, size, tlb);
  }
  zapCalls.add();
  zapPte.add(cleared.pte);
  zapPmd.add(cleared.pmd);
  zapPud.add(cleared.pud);
  return cleared;
}

}  // namespace

LeafCounts zapPageRangeSingle(Vma& vma, VirtAddr addr, uint64_t size, ZapFlush flush) {
  if (trace::enabled()) [[unlikely]] {
    // The TLB flushes of this zap carry its flow id (Machine::flushTlbMmRange).
    trace::Tracer& t = trace::Tracer::current();
    trace::TraceEvent e;
    e.kind = trace::EventKind::kZap;
    e.ts = t.now();
    e.flow = t.newFlowId();
    const trace::FlowScope flow(e.flow);
    const LeafCounts cleared = zapPageRangeSingleUntraced(vma, addr, size, flush);
    e.dur = t.now() - e.ts;
    e.addr = addr.value();
    e.end = addr.value() + size;
    e.value = cleared.total();
    t.record(e);
    return cleared;
  }
  return zapPageRangeSingleUntraced(vma, addr, size, flush);
}

void zapVmaPtes(Vma& vma, VirtAddr addr, uint64_t size) {
  if (addr < vma.start() || addr + size > vma.end() || !(vma.flags() & vm::kPfnmap)) return;
  zapPageRangeSingle(vma, addr, size);
}

}  // namespace vfiomm
