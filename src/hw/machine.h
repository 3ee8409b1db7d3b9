// Machine: the simulated host — its CPUs (each with its TLB) and the
// physical address map — and x86's flush_tlb_mm_range(), the one way the mm
// code reaches the TLBs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/addr.h"
#include "base/kernel_log.h"
#include "hw/cpu.h"
#include "hw/page_table_arena.h"
#include "hw/phys_mem_map.h"
#include "hw/tlb.h"

namespace vfiomm {

struct MachineConfig {
  unsigned cpus = 4;
  TlbGeometry tlb;
  // Where page-table pages come from; null: the machine's own arena. A
  // caller that builds machine after machine (`vfiomm check`) passes one
  // that outlives them all, so each does not map and fault in a fresh
  // 2 MiB chunk of host memory.
  PageTableArena* pageTables = nullptr;
};

// Flush work, summed over every flush of this machine.
struct TlbFlushTotals {
  std::atomic<uint64_t> flushes{0};       // flushTlbMmRange calls
  std::atomic<uint64_t> localFlushes{0};  // the initiator flushed itself
  std::atomic<uint64_t> shootdowns{0};    // IPIs to other CPUs
  std::atomic<uint64_t> fullFlushes{0};   // per CPU: all entries of the mm
  std::atomic<uint64_t> pagesFlushed{0};  // per CPU: invlpg-style invalidations
};

class Machine {
 public:
  static constexpr unsigned kMaxCpus = 64;  // an mm_cpumask is one word
  // tlb_single_page_flush_ceiling (arch/x86/mm/tlb.c, debugfs-tunable): a
  // range of more pages than this is flushed whole.
  static constexpr uint64_t kTlbSinglePageFlushCeiling = 33;

  explicit Machine(const MachineConfig& config = {});
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  unsigned cpuCount() const { return static_cast<unsigned>(cpus_.size()); }
  // Where page-table pages come from: the machine's memory.
  PageTableArena& pageTableArena() { return pageTables_; }
  // The tag an mm's translations carry in every TLB of this machine (its
  // PCID/ASID): unique among the machine's mms.
  uint64_t newMmId() { return nextMmId_.fetch_add(1, std::memory_order_relaxed); }
  Cpu& cpu(unsigned id);
  PhysMemMap& physMemMap() { return physMemMap_; }

  // Adds a region to the physical map.
  void registerRegion(PhysRegion& region);
  // Removes it and waits until no CPU can still use it (no TLB caches it,
  // no access to it is in flight); then the caller may destroy it.
  void unregisterRegion(PhysRegion& region);

  // flush_tlb_mm_range(mm, start, end, stride_shift, freed_tables): flush
  // [start, end) of mm `mmId` on every CPU of `cpumask`, one invalidation
  // per 1 << strideShift bytes, or the whole mm when that is more than
  // kTlbSinglePageFlushCeiling pages or when only page tables were freed
  // (start == end == 0 with freedTables). Every CPU of the mask has its lock
  // taken, even with nothing cached: a page table about to be freed may be
  // under a walk there. `initiatorCpu` flushes locally; the others count as
  // shootdown IPIs. -1: the caller runs on no simulated CPU.
  void flushTlbMmRange(uint64_t mmId, uint64_t cpumask, VirtAddr start, VirtAddr end,
                       unsigned strideShift, bool freedTables, int initiatorCpu);

  // The id of the CPU of this machine the calling thread runs on, or -1:
  // what to pass as `initiatorCpu`.
  int currentCpuId() const;

  const TlbFlushTotals& flushTotals() const { return flushTotals_; }

  // The host kernel's message buffer, here because every layer reaches the
  // machine.
  KernelLog& log() { return log_; }

 private:
  PhysMemMap physMemMap_;
  std::vector<std::unique_ptr<Cpu>> cpus_;
  TlbFlushTotals flushTotals_;
  KernelLog log_;
  std::atomic<uint64_t> nextMmId_{1};
  // Last: every mm's tables (the CPUs' walks read them) go first.
  PageTableArena ownPageTables_;
  PageTableArena& pageTables_;
};

}  // namespace vfiomm
