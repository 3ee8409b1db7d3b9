// OomKill: the OOM killer's entry from the page-fault handler
// (pagefault_out_of_memory(), mm/oom_kill.c). Since 5.16 (60e2793d440a) it
// kills nothing: the allocation that failed already ran the OOM killer if
// one was to run, so a VM_FAULT_OOM that reaches the #PF handler of a user
// fault is only logged, rate limited, and the faulting instruction is
// retried. One per Kernel, as the rate limit's state is one per system.
//
// The model has no clock for the rate limit's 5 s interval: it prints the
// first burst of a boot and holds back every later line.
#pragma once

#include <atomic>

namespace vfiomm {

class KernelLog;

class OomKill {
 public:
  // DEFAULT_RATELIMIT_BURST: the lines printed before the limit holds.
  static constexpr unsigned kRatelimitBurst = 10;

  explicit OomKill(KernelLog& log) : log_(log) {}
  OomKill(const OomKill&) = delete;
  OomKill& operator=(const OomKill&) = delete;

  // pagefault_out_of_memory(): the warning, if the rate limit lets it out.
  void pagefaultOutOfMemory();

 private:
  KernelLog& log_;
  std::atomic<unsigned> printed_{0};
};

}  // namespace vfiomm
