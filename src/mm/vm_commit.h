// VmCommit models the kernel's commit accounting: vm_committed_as, the
// overcommit sysctls and __vm_enough_memory() (vfio-uapi.md §10; mm/util.c).
// One per Kernel: every mm of the system charges the same counter.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "base/result.h"

namespace vfiomm {

// vm.overcommit_memory.
enum class OvercommitMode { kGuess = 0, kAlways = 1, kNever = 2 };

// The host's memory as the kernel sees it, and the overcommit sysctls.
// Defaults: a 64 GiB host with 8 GiB of swap and the kernel's defaults.
struct HostMemory {
  uint64_t ramBytes = 64ULL << 30;  // MemTotal (totalram_pages)
  uint64_t swapBytes = 8ULL << 30;  // SwapTotal (total_swap_pages)
  OvercommitMode overcommitMemory = OvercommitMode::kGuess;
  uint64_t overcommitRatio = 50;        // vm.overcommit_ratio (%)
  uint64_t overcommitKbytes = 0;        // vm.overcommit_kbytes (0: use the ratio)
  uint64_t adminReserveKbytes = 8192;   // vm.admin_reserve_kbytes
  uint64_t userReserveKbytes = 131072;  // vm.user_reserve_kbytes
  // The hugetlb pool (vm.nr_hugepages and its 1 GiB sibling): none by
  // default. Its pages are outside the commit limit; MAP_HUGETLB takes
  // from it (SystemRam carves it out of the RAM it models).
  uint64_t hugepages2M = 0;
  uint64_t hugepages1G = 0;
};

class KernelLog;

class VmCommit {
 public:
  // Refusals are logged to `log`, the kernel's message buffer.
  VmCommit(HostMemory memory, KernelLog& log) : memory_(memory), log_(log) {}
  VmCommit(const VmCommit&) = delete;
  VmCommit& operator=(const VmCommit&) = delete;

  // Who asks, for the warning: current's pid and comm, and its mm's
  // total_vm (pages) for the user reserve of mode 2.
  struct Caller {
    int pid = 0;
    std::string comm;
    uint64_t totalVmPages = 0;
  };
  // __vm_enough_memory(): charges `pages` to vm_committed_as, or undoes
  // the charge, logs the warning (with `bytes: N` when `logBytes`, the
  // vme_log_bytes switch; every time: the model has no clock to rate-limit
  // by) and fails with -ENOMEM. The
  // model's processes have no CAP_SYS_ADMIN: mode 2 keeps the admin
  // reserve back from them.
  Status enoughMemory(uint64_t pages, const Caller& caller, bool logBytes);
  // vm_acct_memory() without a check / vm_unacct_memory().
  void acct(uint64_t pages) { committed_.fetch_add(pages, std::memory_order_relaxed); }
  void unacct(uint64_t pages) { committed_.fetch_sub(pages, std::memory_order_relaxed); }

  const HostMemory& memory() const { return memory_; }
  uint64_t committedPages() const { return committed_.load(std::memory_order_relaxed); }
  // vm_commit_limit(): CommitLimit of /proc/meminfo, in pages.
  uint64_t commitLimitPages() const;

 private:
  const HostMemory memory_;
  KernelLog& log_;
  std::atomic<uint64_t> committed_{0};  // vm_committed_as, in pages
};

}  // namespace vfiomm
