// BatchScheduling: the calling host thread runs under SCHED_BATCH while the
// object lives, and under its previous policy afterwards.
//
// Why: the model's simulated CPUs run in parallel, its host threads share a
// few cores. Under SCHED_OTHER a thread woken by an unlock preempts its
// waker on the same core (wakeup preemption), so a waiter wins every race
// that on separate CPUs it would lose by the microseconds a wake-up takes:
// G1's zap loop (vfio_pci_zap_and_vma_lock) unlocks vma_lock and takes it
// again at once, and a vCPU woken in between refills the whole VMA. Pinned
// to one core, a reset under load saw 87 to 193 such refills; with the
// vCPU under SCHED_BATCH, whose woken threads never preempt, it saw one
// (docs/PERFORMANCE.md, "Issue 16, sixth session"). Only the woken side
// needs it, so the runner gives it to the threads that run a phase's
// accesses and leaves the events' thread, which sleeps and polls, alone.
// The kernel's algorithm is the same either way; only how often the host
// lets the waiter in changes.
// Best effort: a host that refuses the policy keeps the old one.
#pragma once

namespace vfiomm::sim {

class BatchScheduling {
 public:
  BatchScheduling();
  ~BatchScheduling();
  BatchScheduling(const BatchScheduling&) = delete;
  BatchScheduling& operator=(const BatchScheduling&) = delete;

 private:
  int previousPolicy_ = -1;  // -1: nothing to restore
  int previousPriority_ = 0;
};

}  // namespace vfiomm::sim
