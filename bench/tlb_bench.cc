#include <benchmark/benchmark.h>

#include "bound_context.h"  // tests/
#include "hw/cpu.h"
#include "hw/machine.h"
#include "hw/phys_mem_map.h"
#include "mm/mm.h"
#include "mm/page_table.h"
#include "mm/pte.h"
#include "mm/task.h"

namespace vfiomm {
namespace {

constexpr PhysAddr kRamBase(uint64_t{1} << 36);
constexpr VirtAddr kUserVa(0x7f00'0000'0000);

// One process running on CPU 0 of a machine with RAM, its page table filled
// directly with `pages` writable 4 KiB leaves from kUserVa on.
struct Rig {
  explicit Rig(uint64_t pages) {
    machine.registerRegion(ram);
    task.mm = &mm;
    machine.cpu(0).switchTo(&task);
    for (uint64_t p = 0; p < pages; ++p) {
      PageTable::Slot slot;
      mm.pageTable().slotAt(kUserVa + p * kPageSize, PtLevel::kPte, true, &slot);
      slot.entry->store(pte::makeLeaf(Pfn::fromPhys(kRamBase) + p, pte::kUser | pte::kRw, false));
    }
  }
  ~Rig() { machine.cpu(0).switchTo(nullptr); }

  testing::BoundContext boundContext;  // first: everything below runs on it
  Machine machine;
  RamRegion ram{"ram", kRamBase, uint64_t{1} << 30};
  Mm mm{machine, MmProfile{}};
  Task task;
};

// The cost of one simulated load whose translation the TLB holds: the CPU
// lock's own side, the TLB's front, RAM read, counters. Target (issue 16):
// <= 5 ns.
void BM_TlbHitLoad(benchmark::State& state) {
  Rig rig(1);
  Cpu& cpu = rig.machine.cpu(0);
  rig.ram.write(0x40, 8, 7, {});
  cpu.load(kUserVa, 8);  // fill the TLB
  for (auto _ : state) benchmark::DoNotOptimize(cpu.load(kUserVa + 0x40, 8).value);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TlbHitLoad);

// Every load misses: the pages cycle through twice the 4 KiB array's
// capacity, so LRU has always just evicted the next one. Adds the page walk
// and the TLB fill to the hit cost.
void BM_TlbMissWalk(benchmark::State& state) {
  const uint64_t pages = 2 * TlbGeometry{}.page4k.entries;
  Rig rig(pages);
  Cpu& cpu = rig.machine.cpu(0);
  uint64_t p = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cpu.load(kUserVa + p * kPageSize, 8).value);
    p = p + 1 == pages ? 0 : p + 1;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["hit_ratio"] =
      static_cast<double>(cpu.tlbStats().hits[0].load()) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_TlbMissWalk);

}  // namespace
}  // namespace vfiomm
