// Fault, insert and zap costs of the mm model (release build, lockdep off).
// Results and the command that produced them: docs/PERFORMANCE.md.
#include <benchmark/benchmark.h>

#include <memory>

#include "bound_context.h"  // tests/
#include "hw/cpu.h"
#include "hw/machine.h"
#include "hw/phys_mem_map.h"
#include "kernel/kernel_profile.h"
#include "mm/fake_bar_file.h"  // tests/mm: the pfnmap driver of the mm tests
#include "mm/fault.h"
#include "mm/mm.h"
#include "mm/mmu_gather.h"
#include "mm/page_table.h"
#include "mm/task.h"
#include "sync/lockdep.h"

namespace vfiomm {
namespace {

using testing::FakeBarFile;

constexpr PhysAddr kBarBase{0x40'0000'0000};

// One mm with one BAR mapping at `va`, lockdep off for the measurement.
struct Rig {
  Rig(std::string_view profile, bool huge, uint64_t len, VirtAddr va, bool perVmaLock = true)
      : bar(std::make_shared<FakeBarFile>(kBarBase, len, huge)) {
    lockdep::setEnabled(false);  // this rig's own kernel context
    auto p = *KernelProfile::byName(profile);
    p.mm.perVmaLock = perVmaLock;
    mm = std::make_unique<Mm>(machine, p.mm);
    task.mm = mm.get();
    base = *mm->mmap(va, len, prot::kRead | prot::kWrite, map::kShared | map::kFixed, bar, 0);
  }
  ~Rig() { mm.reset(); }

  testing::BoundContext boundContext;  // first: everything below runs on it
  Machine machine;
  std::shared_ptr<FakeBarFile> bar;
  std::unique_ptr<Mm> mm;
  Task task;
  VirtAddr base;
};

// The rig's task running on CPU 0, its BAR's physical range backed by
// memory that reads 0, so that a user load can fault and complete.
struct OnCpu {
  explicit OnCpu(Rig& r, uint64_t len) : rig(r), bar("bar", kBarBase, len) {
    rig.machine.registerRegion(bar);
    rig.machine.cpu(0).switchTo(&rig.task);
  }
  ~OnCpu() {
    rig.machine.cpu(0).switchTo(nullptr);
    rig.machine.unregisterRegion(bar);
  }
  Cpu& cpu() { return rig.machine.cpu(0); }

  Rig& rig;
  RamRegion bar;
};

// Faults the mapping's entries of `step` bytes each, one per iteration, by
// `fault(address)`, zapping (untimed) when the mapping is full.
template <class Fault>
void faultLoop(benchmark::State& state, Rig& rig, uint64_t len, uint64_t step, Fault&& fault) {
  uint64_t off = 0;
  for (auto _ : state) {
    if (off == len) {
      state.PauseTiming();
      rig.bar->zap();
      off = 0;
      state.ResumeTiming();
    }
    fault(rig.base + off);
    off += step;
  }
  state.SetItemsProcessed(state.iterations());
}

// The same, each fault through do_user_addr_fault as the #PF handler calls it.
void faultLoop(benchmark::State& state, Rig& rig, uint64_t len, uint64_t step) {
  faultLoop(state, rig, len, step, [&rig](VirtAddr va) {
    benchmark::DoNotOptimize(doUserAddrFault(rig.task, va, FaultAccess::kRead));
  });
}

// A user load of a page not yet mapped, the issue 16 target's measure: the
// TLB miss and the walk that finds no entry, the #PF through
// do_user_addr_fault to vfio's 4 KiB fault and vmf_insert_pfn, then the
// retried load's miss, walk, fill and read. Arg 0: the linux-6.10 path
// (per-VMA attempt, RETRY, mmap-lock attempt); Arg 1: no per-VMA lock (one
// attempt under the mmap lock). The zap when the mapping is full is not
// timed.
void BM_FaultPte(benchmark::State& state) {
  constexpr uint64_t kLen = 256ULL << 20;
  Rig rig("linux-6.10", false, kLen, VirtAddr(0x7f0000000000), state.range(0) == 0);
  OnCpu on(rig, kLen);
  faultLoop(state, rig, kLen, kPageSize,
            [&on](VirtAddr va) { benchmark::DoNotOptimize(on.cpu().load(va, 8).value); });
}
BENCHMARK(BM_FaultPte)->Arg(0)->Arg(1);

// The fault alone, called as the #PF handler would be, with no CPU, TLB or
// walk around it (what BM_FaultPte measured until the tenth session).
void BM_DoUserAddrFaultPte(benchmark::State& state) {
  constexpr uint64_t kLen = 256ULL << 20;
  Rig rig("linux-6.10", false, kLen, VirtAddr(0x7f0000000000), state.range(0) == 0);
  faultLoop(state, rig, kLen, kPageSize);
}
BENCHMARK(BM_DoUserAddrFaultPte)->Arg(0)->Arg(1);

void BM_FaultPmd(benchmark::State& state) {
  constexpr uint64_t kLen = 4ULL << 30;
  Rig rig("linux-6.12", true, kLen, VirtAddr(0x7f0000200000));
  faultLoop(state, rig, kLen - kPmdSize, kPmdSize);
}
BENCHMARK(BM_FaultPmd);

void BM_FaultPud(benchmark::State& state) {
  constexpr uint64_t kLen = 64ULL << 30;
  Rig rig("linux-6.12", true, kLen, VirtAddr(0x7f0000000000));
  faultLoop(state, rig, kLen, kPudSize);
}
BENCHMARK(BM_FaultPud);

// unmap_mapping_range over a fully populated 4 KiB mapping: time per entry.
void BM_ZapPte(benchmark::State& state) {
  const uint64_t len = static_cast<uint64_t>(state.range(0)) << 20;
  Rig rig("linux-6.10", false, len, VirtAddr(0x7f0000000000), false);
  for (auto _ : state) {
    state.PauseTiming();
    for (uint64_t off = 0; off < len; off += kPageSize)
      (void)doUserAddrFault(rig.task, rig.base + off, FaultAccess::kRead);
    state.ResumeTiming();
    benchmark::DoNotOptimize(rig.bar->zap());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(len / kPageSize));
}
BENCHMARK(BM_ZapPte)->Arg(64)->Arg(1024);

// A page table holding `pages` special 4 KiB PTEs from `va` on, lockdep off.
struct FilledTable {
  FilledTable(uint64_t pages, VirtAddr va) {
    lockdep::setEnabled(false);
    for (uint64_t p = 0; p < pages; ++p) {
      PageTable::Slot slot;
      pt.slotAt(va + p * kPageSize, PtLevel::kPte, true, &slot);
      slot.entry->store(pte::makeLeaf(Pfn::fromPhys(kBarBase) + p, pte::kUser | pte::kRw, false));
    }
  }
  testing::BoundContext boundContext;  // first: the table runs on it
  PageTableArena arena;
  PageTable pt{arena};
};

// fork's copy_page_range over a fully populated 4 KiB range into an empty
// child table (allocations included): time per entry.
void BM_CopyRangePte(benchmark::State& state) {
  const uint64_t len = static_cast<uint64_t>(state.range(0)) << 20;
  const VirtAddr va(0x7f0000000000);
  FilledTable parent(len / kPageSize, va);
  for (auto _ : state) {
    state.PauseTiming();
    auto child = std::make_unique<PageTable>(parent.arena);
    state.ResumeTiming();
    benchmark::DoNotOptimize(parent.pt.copyRange(*child, va, va + len));
    state.PauseTiming();
    child.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(len / kPageSize));
}
BENCHMARK(BM_CopyRangePte)->Arg(64);

// mremap's move_page_tables of a fully populated 4 KiB range back and forth
// between two places 5 pages off each other's 2 MiB alignment, so every
// source PTE table feeds two destination tables: time per entry.
void BM_MoveRangePte(benchmark::State& state) {
  const uint64_t len = static_cast<uint64_t>(state.range(0)) << 20;
  const VirtAddr a(0x7f0000000000);
  const VirtAddr b(0x7f4000000000 + 5 * kPageSize);
  FilledTable table(len / kPageSize, a);
  bool there = false;
  for (auto _ : state) {
    MmuGather tlb(nullptr);
    benchmark::DoNotOptimize(there ? table.pt.moveRange(b, a, len, tlb)
                                   : table.pt.moveRange(a, b, len, tlb));
    there = !there;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(len / kPageSize));
}
BENCHMARK(BM_MoveRangePte)->Arg(64);

// Page-table memory of a fully populated 4 KiB mapping, per page mapped:
// the host bytes the model spends (tables + descriptors) and the kernel's
// own pgtables_bytes accounting.
void BM_PageTableBytesPerPage(benchmark::State& state) {
  const uint64_t len = static_cast<uint64_t>(state.range(0)) << 30;
  Rig rig("linux-6.10", false, len, VirtAddr(0x7e0000000000), false);
  for (auto _ : state) {
    for (uint64_t off = 0; off < len; off += kPageSize)
      (void)doUserAddrFault(rig.task, rig.base + off, FaultAccess::kRead);
  }
  const double pages = static_cast<double>(len / kPageSize);
  state.counters["host_bytes_per_page"] =
      static_cast<double>(rig.mm->pageTable().hostBytes()) / pages;
  state.counters["pgtables_bytes_per_page"] =
      static_cast<double>(rig.mm->pageTable().pgtablesBytes()) / pages;
}
BENCHMARK(BM_PageTableBytesPerPage)->Arg(1)->Arg(8)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vfiomm
