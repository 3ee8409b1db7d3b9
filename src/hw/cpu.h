// Cpu: one simulated x86-64 CPU executing a user thread's loads and stores.
// An access looks the address up in the CPU's TLB, walks the current
// address space's tables on a miss (MmuContext), and performs the physical
// access through the region that decodes the frame; a missing or read-only
// translation traps to the thread's page-fault handler (UserContext) and the
// access is retried, or the signal the handler delivered is returned to the
// caller.
//
// The CPU lock makes "an instruction is atomic with respect to interrupts":
// an access holds it from the TLB lookup to the end of the physical access,
// and a TLB shootdown takes it to flush. So once a flush of a CPU returned,
// no access on that CPU is still using the old translation (ZAP-04).
#pragma once

#include <atomic>
#include <cstdint>

#include "base/addr.h"
#include "hw/mmu_context.h"
#include "hw/tlb.h"
#include "hw/trap.h"
#include "sync/thread_annotations.h"

namespace vfiomm {

class PhysMemMap;

// A ticket spinlock: one atomic increment when free, and first come, first
// served, so a CPU thread issuing back-to-back accesses cannot starve a
// shootdown waiting for its lock. Not a model lock: lockdep never sees it,
// exactly as it never sees "interrupts are off".
class CAPABILITY("cpu lock") CpuLock {
 public:
  CpuLock() = default;
  CpuLock(const CpuLock&) = delete;
  CpuLock& operator=(const CpuLock&) = delete;

  void lock() ACQUIRE() {
    const uint32_t ticket = next_.fetch_add(1, std::memory_order_relaxed);
    if (serving_.load(std::memory_order_acquire) != ticket) [[unlikely]]
      waitFor(ticket);
  }
  void unlock() RELEASE() {
    // Only the holder writes serving_, so load + store is the increment.
    serving_.store(serving_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

 private:
  void waitFor(uint32_t ticket);

  std::atomic<uint32_t> next_{0};
  std::atomic<uint32_t> serving_{0};
};

class SCOPED_CAPABILITY CpuLockGuard {
 public:
  explicit CpuLockGuard(CpuLock& l) ACQUIRE(l) : l_(l) { l_.lock(); }
  ~CpuLockGuard() RELEASE() { l_.unlock(); }
  CpuLockGuard(const CpuLockGuard&) = delete;
  CpuLockGuard& operator=(const CpuLockGuard&) = delete;

 private:
  CpuLock& l_;
};

struct AccessResult {
  SigInfo sig;         // signo 0: the access completed
  uint64_t value = 0;  // what a load read
};

class Cpu {
 public:
  // A fault that keeps coming back without a signal is a model bug.
  static constexpr unsigned kMaxFaultRetries = 1000;

  Cpu(unsigned id, PhysMemMap& physMemMap, const TlbGeometry& geometry);
  Cpu(const Cpu&) = delete;
  Cpu& operator=(const Cpu&) = delete;

  unsigned id() const { return id_; }

  // Context switch to `thread` (nullptr: idle). Puts the CPU in its address
  // space's cpumask; with PCIDs the TLB keeps the previous one's entries.
  void switchTo(UserContext* thread) EXCLUDES(lock_);

  // 1, 2, 4 or 8 bytes at an address aligned to the size, by the current
  // thread (which must have an address space). The calling host thread is
  // that thread: it keeps the CPU until the access returns, page fault
  // included.
  AccessResult load(VirtAddr va, unsigned size) EXCLUDES(lock_) {
    return access(va, size, false, 0);
  }
  AccessResult store(VirtAddr va, unsigned size, uint64_t value) EXCLUDES(lock_) {
    return access(va, size, true, value);
  }

  // --- TLB maintenance: each waits for an access in flight on this CPU ----------
  // Returns the addresses invalidated.
  uint64_t flushTlbRange(uint64_t mmId, VirtAddr start, VirtAddr end, unsigned strideShift)
      EXCLUDES(lock_);
  void flushTlbMm(uint64_t mmId) EXCLUDES(lock_);
  void flushTlbAll() EXCLUDES(lock_);
  // The physical map changed: drop cached regions (not translations).
  void forgetRegions() EXCLUDES(lock_);
  // Whether the TLB holds a translation of `va` for `mmId` (monitors, tests).
  bool tlbTranslates(uint64_t mmId, VirtAddr va) EXCLUDES(lock_);
  size_t tlbEntries() EXCLUDES(lock_);
  // The statistics are atomics written under the lock and readable without
  // it, which the analysis cannot tell from the rest of the TLB.
  const TlbStats& tlbStats() const NO_THREAD_SAFETY_ANALYSIS { return tlb_.stats(); }

  // The CPU the calling thread runs on, or nullptr (a kernel thread, an
  // ioctl from no simulated CPU).
  static Cpu* current();

  // Marks the calling thread as running on `cpu` for its lifetime: the
  // user-space layer wraps a syscall in it, and an access wraps its page
  // fault, so that a TLB flush they cause is local on this CPU.
  class Running {
   public:
    explicit Running(Cpu& cpu);
    ~Running();
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;

   private:
    Cpu* previous_;
  };

 private:
  AccessResult access(VirtAddr va, unsigned size, bool write, uint64_t value) EXCLUDES(lock_);
  // The access needed a page fault: handle it and retry until the access
  // completes or the fault delivers a signal.
  AccessResult faultAndRetry(UserContext& thread, VirtAddr va, unsigned size, bool write,
                             uint64_t value) EXCLUDES(lock_);
  // The access through the TLB, or false when it needs a page fault.
  bool tryAccess(VirtAddr va, unsigned size, bool write, uint64_t& value) REQUIRES(lock_);
  // The rest of it: miss, walk, or memory that is not plain (`e` may be null).
  bool tryAccessSlow(TlbEntry* e, VirtAddr va, unsigned size, bool write, uint64_t& value)
      REQUIRES(lock_);
  // Page walk and TLB fill; nullptr when the walk faults.
  TlbEntry* walk(VirtAddr va, bool write) REQUIRES(lock_);
  // The access through the region decoding the frame `e` maps `va` to (or
  // through none); refreshes what `e` caches about that memory.
  void accessRegion(TlbEntry& e, VirtAddr va, unsigned size, bool write, uint64_t& value)
      REQUIRES(lock_);

  const unsigned id_;
  PhysMemMap& physMemMap_;
  CpuLock lock_;
  UserContext* thread_ GUARDED_BY(lock_) = nullptr;
  // The current thread's address space, as CR3 and the PCID hold it: loaded
  // at the context switch, not looked up per access.
  MmuContext* mmu_ GUARDED_BY(lock_) = nullptr;
  uint64_t mmId_ GUARDED_BY(lock_) = 0;
  Tlb tlb_ GUARDED_BY(lock_);
  // AccessInfo::seq of the accesses that reach a region (plain memory
  // accessed directly has no one to tell).
  uint64_t accessSeq_ GUARDED_BY(lock_) = 0;
};

}  // namespace vfiomm
