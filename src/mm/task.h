// The per-thread state the fault path touches: who it is (for reports and
// traces) and its fault counters as getrusage(RUSAGE_THREAD) reports them.
// To the CPU it runs on, it is a user context: its mm is what the MMU
// walks, and its page faults go to do_user_addr_fault().
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "hw/mmu_context.h"

namespace vfiomm {

class Mm;

struct Task final : UserContext {
  std::string comm;
  int pid = 0;  // tgid: the process
  int tid = 0;
  Mm* mm = nullptr;
  std::atomic<uint64_t> minFlt{0};     // ru_minflt
  std::atomic<uint64_t> majFlt{0};     // ru_majflt
  std::atomic<uint64_t> perfMinor{0};  // perf PAGE_FAULTS_MIN events (regs != NULL)

  MmuContext* mmuContext() override;
  SigInfo pageFault(VirtAddr va, FaultAccess access) override;
};

}  // namespace vfiomm
