// InvariantMonitor: checks ARCHITECTURE.md's invariants on one Kernel while
// anything runs, and says how often each was broken.
//  1. no load or store reaches a BAR whose memory decode is off (counted by
//     the BARs themselves: PciHost::decodeViolationCount());
//  2. after a zap of a VMA returns, neither its page table nor any CPU's TLB
//     translates into the zapped range (checked at every zap);
//  4. every entry mapping a device maps the pfn its address calls for, no
//     huge entry crosses its VMA, and no leaf lies outside every VMA
//     (checkEntries(), on demand);
//  5. lockdep reported nothing (lockdep's counter);
//  6. once every process exited: no page-table page, VMA or i_mmap node is
//     left (checkLeaks());
//  7. no device DMA reaches a BAR whose memory decode is off (counted by the
//     IOMMU, which keeps the device and IOVA: Iommu::dmaDecodeViolations()).
//     With type1 this is reachable by design: its IOPTEs outlive the zap.
// Invariant 3 (a store is visible through every mapping and pread) is a
// property of the pfn arithmetic that (4) checks entry by entry; the data
// path itself is tested directly (PFN-02).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/addr.h"

namespace vfiomm {

class Kernel;
class Process;
class Vma;

struct InvariantCounts {
  uint64_t decodeViolations = 0;     // 1
  uint64_t staleAfterZap = 0;        // 2
  uint64_t wrongEntries = 0;         // 4
  uint64_t lockdepReports = 0;       // 5
  uint64_t leaks = 0;                // 6
  uint64_t dmaDecodeViolations = 0;  // 7
  uint64_t total() const {
    return decodeViolations + staleAfterZap + wrongEntries + lockdepReports + leaks +
           dmaDecodeViolations;
  }
};

class InvariantMonitor {
 public:
  // Starts watching every vfio device of `kernel` (invariant 2 from now on).
  explicit InvariantMonitor(Kernel& kernel);
  ~InvariantMonitor();
  InvariantMonitor(const InvariantMonitor&) = delete;
  InvariantMonitor& operator=(const InvariantMonitor&) = delete;

  // Invariant 4 over every live process given (takes each mmap_lock for read).
  void checkEntries(const std::vector<std::shared_ptr<Process>>& processes);
  // Invariant 6 once these processes have exited.
  void checkLeaks(const std::vector<std::shared_ptr<Process>>& processes);

  // Names who runs a zap, for the invariant-2 findings (a deterministic
  // scheduler's thread); unset, they do not say.
  void setWho(std::function<std::string()> who) { who_ = std::move(who); }

  // The counts since construction.
  InvariantCounts counts() const;
  // What went wrong, one line each (bounded).
  std::vector<std::string> findings() const;

 private:
  void afterZap(const Vma& vma, VirtAddr start, VirtAddr end);
  void note(std::atomic<uint64_t>& counter, std::string what);

  Kernel& kernel_;
  const uint64_t decodeBase_;
  const uint64_t lockdepBase_;
  const uint64_t dmaDecodeBase_;
  std::atomic<uint64_t> staleAfterZap_{0};
  std::atomic<uint64_t> wrongEntries_{0};
  std::atomic<uint64_t> leaks_{0};
  std::function<std::string()> who_;
  mutable std::mutex findingsMu_;  // the monitor's own; not a modelled lock
  std::vector<std::string> findings_;
};

}  // namespace vfiomm
