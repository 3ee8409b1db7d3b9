// The per-thread state the fault path touches: who it is (for reports and
// traces) and its fault counters as getrusage(RUSAGE_THREAD) reports them.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace vfiomm {

class Mm;

struct Task {
  std::string comm;
  int pid = 0;  // tgid: the process
  int tid = 0;
  Mm* mm = nullptr;
  std::atomic<uint64_t> minFlt{0};     // ru_minflt
  std::atomic<uint64_t> majFlt{0};     // ru_majflt
  std::atomic<uint64_t> perfMinor{0};  // perf PAGE_FAULTS_MIN events (regs != NULL)
};

}  // namespace vfiomm
