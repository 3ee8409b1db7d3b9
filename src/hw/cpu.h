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

// The CPU lock. Two sides: the CPU's own (its accesses and context
// switches, one instruction stream that never overlaps itself) and every
// other thread's (a shootdown, a probe). The own side is the hot one, one per
// access, so it takes the lock without a locked read-modify-write: it stores
// "busy" and then reads whether another side waits, and the other side
// stores "waiting" and then reads "busy" (Dekker). Each side needs a full
// barrier between its store and its load. The other side's is an exchange,
// and it pays for the own side's too with
// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a full barrier
// on every CPU running a thread of the process, so the own side's barrier is
// a compiler fence. A membarrier costs a system call and an IPI per host CPU
// running a thread of the process, so the own side uses a real barrier (an
// exchange) for its first kFencedTakes takes, and for kFencedTakes again
// after another side's take ends a stretch without: a CPU flushed often pays
// the exchange, as before, one flushed rarely pays one membarrier per flush,
// and a kernel torn down before its CPUs ran much (a test, a fuzz input)
// pays none. Without membarrier (an old kernel, a sandbox, ThreadSanitizer,
// which cannot see it) the own side always uses the exchange.
//
// Other sides take turns through a ticket spinlock, first come, first
// served, so a CPU thread issuing back-to-back accesses cannot starve a
// shootdown: once one waits, the own side's next take waits for it. Not a
// model lock: lockdep never sees it, exactly as it never sees "interrupts
// are off".
class CAPABILITY("cpu lock") CpuLock {
 public:
  enum class Side {
    kOwn,    // the CPU's own thread
    kOther,  // any other thread
  };

  // Own-side takes between a take by another side and the return to the
  // compiler fence: their exchanges (about 7 ns each) cost about as much as
  // the membarrier (about 9 us with the CPU's thread running elsewhere) that
  // the next take by another side then needs.
  static constexpr unsigned kFencedTakes = 1024;

  CpuLock() = default;
  CpuLock(const CpuLock&) = delete;
  CpuLock& operator=(const CpuLock&) = delete;

  void lock(Side side) ACQUIRE() {
    if (side == Side::kOwn)
      lockOwn();
    else
      lockOther();
  }
  void unlock(Side side) RELEASE() {
    if (side == Side::kOwn)
      ownBusy_.store(false, std::memory_order_release);
    else
      unlockOther();
  }

  // The own side without the exchange or a wait: false when the exchange
  // is due or another side waits (then lock(kOwn) does either).
  bool tryLockOwn() TRY_ACQUIRE(true) {
    if (fenced_.load(std::memory_order_relaxed)) [[unlikely]]
      return false;
    ownBusy_.store(true, std::memory_order_relaxed);
    // The other side's membarrier() is the full barrier this needs.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (otherWaiting_.load(std::memory_order_acquire)) [[unlikely]] {
      ownBusy_.store(false, std::memory_order_release);
      return false;
    }
    return true;
  }

  // Whether the own side uses the compiler fence now (tests).
  bool ownSideUnfenced() const { return !fenced_.load(std::memory_order_relaxed); }
  // Whether this process has membarrier(), so that the own side can ever go
  // without its exchange (tests).
  static bool asymmetric();

 private:
  void lockOwn() ACQUIRE() {
    if (tryLockOwn()) [[likely]]
      return;
    lockOwnSlow();
  }
  // With the exchange, or after another side's turn.
  void lockOwnSlow() ACQUIRE();
  void markBusyFenced();
  void lockOther() ACQUIRE();
  void unlockOther() RELEASE();

  std::atomic<bool> ownBusy_{false};       // written by the own side only
  std::atomic<bool> otherWaiting_{false};  // written by the ticket holder only
  // The own side needs a real barrier: set from the start and by another
  // side, cleared by the own side. Always set without membarrier.
  std::atomic<bool> fenced_{true};
  unsigned fencedTakesLeft_ = kFencedTakes;  // the own side's
  std::atomic<uint32_t> next_{0};
  std::atomic<uint32_t> serving_{0};
};

class SCOPED_CAPABILITY CpuLockGuard {
 public:
  CpuLockGuard(CpuLock& l, CpuLock::Side side) ACQUIRE(l) : l_(l), side_(side) { l_.lock(side_); }
  ~CpuLockGuard() RELEASE() { l_.unlock(side_); }
  CpuLockGuard(const CpuLockGuard&) = delete;
  CpuLockGuard& operator=(const CpuLockGuard&) = delete;

 private:
  CpuLock& l_;
  const CpuLock::Side side_;
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
    return access<false>(va, size, 0);
  }
  AccessResult store(VirtAddr va, unsigned size, uint64_t value) EXCLUDES(lock_) {
    return access<true>(va, size, value);
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
  // One instance per direction: the hit path tests `write` at compile time.
  template <bool write>
  AccessResult access(VirtAddr va, unsigned size, uint64_t value) EXCLUDES(lock_);
  // The side of the CPU lock the calling thread takes: a flush from inside
  // this CPU's own page fault is the CPU's own work.
  CpuLock::Side side() const {
    return current() == this ? CpuLock::Side::kOwn : CpuLock::Side::kOther;
  }
  // Everything but a hit of the TLB's front on plain memory.
  AccessResult accessSlow(VirtAddr va, unsigned size, bool write, uint64_t value) EXCLUDES(lock_);
  // The same, for an access of a valid shape with the lock's own side
  // already taken.
  AccessResult accessLocked(VirtAddr va, unsigned size, bool write, uint64_t value) RELEASE(lock_);
  // A hit of the TLB's front, entry `e`, on memory that is not plain (a
  // BAR): through its region, with the lock's own side taken.
  AccessResult accessFrontRegion(TlbEntry& e, VirtAddr va, unsigned size, bool write,
                                 uint64_t value) RELEASE(lock_);
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
  // The access to plain memory: `va`'s offset in `page`.
  static void accessPage(HostPage& page, VirtAddr va, unsigned size, bool write, uint64_t& value);
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
