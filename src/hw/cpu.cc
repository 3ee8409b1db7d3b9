#include "hw/cpu.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "base/assert.h"
#include "base/counter.h"
#include "hw/phys_mem_map.h"
#include "sync/sched_hook.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(tlbWalk, "tlb.walk", "page-table walks after a TLB miss");

thread_local Cpu* currentCpu = nullptr;

// Spins between yields: long enough to cover an access in flight, short
// enough that a waiter whose holder was preempted gives its core away.
constexpr unsigned kSpinsBeforeYield = 128;

void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until `done()`, giving way as kSpinsBeforeYield says.
template <typename Done>
void spinUntil(Done done) {
  for (unsigned spins = 1; !done(); ++spins) {
    cpuRelax();
    if (spins % kSpinsBeforeYield == 0) {
      // More simulated CPUs than host cores: let the holder run.
      spinPoint("cpu lock");
      std::this_thread::yield();
    }
  }
}

long membarrier(int cmd) { return syscall(__NR_membarrier, cmd, 0U, 0); }

// Whether membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) works in this
// process; registers it the first time. ThreadSanitizer cannot see the
// barrier it stands for, so under it the answer is no.
bool membarrierRegistered() {
#if defined(__SANITIZE_THREAD__)
  return false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return false;
#endif
#endif
  static const bool registered = [] {
    const long commands = membarrier(MEMBARRIER_CMD_QUERY);
    return commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
           membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  }();
  return registered;
}

}  // namespace

bool CpuLock::asymmetric() { return membarrierRegistered(); }

void CpuLock::markBusyFenced() {
  if (--fencedTakesLeft_ == 0) {
    fencedTakesLeft_ = kFencedTakes;
    // Cleared before the exchange below: its barrier makes the clear
    // visible before this take reads otherWaiting_, so another side that
    // still read "fenced" finds either ownBusy_ set or this take waiting.
    if (membarrierRegistered()) fenced_.store(false, std::memory_order_relaxed);
  }
  ownBusy_.exchange(true, std::memory_order_seq_cst);
}

[[gnu::noinline]] void CpuLock::lockOwnSlow() {
  for (;;) {
    if (fenced_.load(std::memory_order_relaxed)) {
      markBusyFenced();
    } else {
      ownBusy_.store(true, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
    }
    if (!otherWaiting_.load(std::memory_order_acquire)) return;
    ownBusy_.store(false, std::memory_order_release);
    spinUntil([&] { return !otherWaiting_.load(std::memory_order_acquire); });
  }
}

void CpuLock::lockOther() {
  const uint32_t ticket = next_.fetch_add(1, std::memory_order_relaxed);
  spinUntil([&] { return serving_.load(std::memory_order_acquire) == ticket; });
  // An exchange: a full barrier between announcing the wait and reading
  // the own side's state.
  otherWaiting_.exchange(true, std::memory_order_seq_cst);
  if (!fenced_.load(std::memory_order_relaxed)) {
    fenced_.store(true, std::memory_order_relaxed);
    // The own side's take in flight either is visible now or reads
    // otherWaiting_ after this; its next takes use the exchange.
    VFIOMM_ASSERT_MSG(membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0, "membarrier failed");
  }
  spinUntil([&] { return !ownBusy_.load(std::memory_order_acquire); });
}

void CpuLock::unlockOther() {
  otherWaiting_.store(false, std::memory_order_release);
  // Only the holder writes serving_, so load + store is the increment.
  serving_.store(serving_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

inline void Cpu::accessPage(HostPage& page, VirtAddr va, unsigned size, bool write,
                            uint64_t& value) {
  const uint64_t offset = va.value() & (kPageSize - 1);
  if (write)
    page.store(offset, size, value);
  else
    value = page.load(offset, size);
}

Cpu::Cpu(unsigned id, PhysMemMap& physMemMap, const TlbGeometry& geometry)
    : id_(id), physMemMap_(physMemMap), tlb_(geometry) {}

void Cpu::switchTo(UserContext* thread) {
  CpuLockGuard guard(lock_, CpuLock::Side::kOwn);
  MmuContext* mmu = thread != nullptr ? thread->mmuContext() : nullptr;
  // switch_mm_irqs_off(): join the next mm's cpumask before any access of it
  // can fill the TLB, so that every later flush of that mm reaches us.
  if (mmu != nullptr) mmu->noteCpu(id_);
  thread_ = thread;
  mmu_ = mmu;
  mmId_ = mmu != nullptr ? mmu->asid() : 0;
}

// Inlined into its two callers: a BAR access runs it on every load, and the
// call's frame cost as much as the routing.
[[gnu::always_inline]] inline void Cpu::accessRegion(TlbEntry& e, VirtAddr va, unsigned size,
                                                     bool write, uint64_t& value) {
  const PhysAddr pa = e.physAddr(va);
  const AccessInfo info{static_cast<int>(id_), pa, write, ++accessSeq_};
  PhysRegion* region = e.region;
  if (region == nullptr || !region->contains(pa)) {
    // The physical map changed, or the leaf spans regions.
    region = physMemMap_.lookup(Pfn::fromPhys(pa));
    if (region == nullptr) {
      if (write)
        physMemMap_.write(pa, size, value, info);
      else
        value = physMemMap_.read(pa, size, info);
      return;
    }
    e.region = region;
  }
  const uint64_t offset = pa - region->base();
  if (write)
    region->write(offset, size, value, info);
  else
    value = region->read(offset, size, info);
  // Asked after the access: a store may just have given the page memory.
  e.directVpn = va.value() >> kPageShift;
  e.directPage = region->directPage(offset);
}

// A TLB hit on a frame of plain memory whose host page the entry already
// holds, else the rest of it.
inline bool Cpu::tryAccess(VirtAddr va, unsigned size, bool write, uint64_t& value) {
  TlbEntry* e = tlb_.lookup(mmId_, va, write);
  if (e != nullptr && e->directPage != nullptr && e->directVpn == va.value() >> kPageShift)
      [[likely]] {
    accessPage(*e->directPage, va, size, write, value);
    return true;
  }
  return tryAccessSlow(e, va, size, write, value);
}

[[gnu::noinline]] bool Cpu::tryAccessSlow(TlbEntry* e, VirtAddr va, unsigned size, bool write,
                                          uint64_t& value) {
  if (e == nullptr) {
    e = walk(va, write);
    if (e == nullptr) return false;
  }
  accessRegion(*e, va, size, write, value);
  return true;
}

template <bool write>
AccessResult Cpu::access(VirtAddr va, unsigned size, uint64_t value) {
  // The hit this function exists for, kept free of calls on its way (the
  // frame is there for the calls of the other ways): the lock's own side
  // without its exchange, the TLB's front without its arrays, plain memory
  // whose page the entry holds.
  // Anything else leaves before counting a thing and goes on the long way,
  // keeping the lock if it took it.
  if (isPowerOfTwo(size) && size <= 8 && isAligned(va.value(), size) && va.value() < kTaskSize &&
      lock_.tryLockOwn()) [[likely]] {
    TlbEntry* e = tlb_.front(mmId_, va, write);
    if (e != nullptr && e->directPage != nullptr && e->directVpn == va.value() >> kPageShift)
        [[likely]] {
      tlb_.hitFront();
      accessPage(*e->directPage, va, size, write, value);
      lock_.unlock(CpuLock::Side::kOwn);
      return {SigInfo{}, value};
    }
    if (e != nullptr) return accessFrontRegion(*e, va, size, write, value);
    return accessLocked(va, size, write, value);
  }
  return accessSlow(va, size, write, value);
}

// What accessLocked() would do with this hit, without asking the TLB again.
[[gnu::noinline]] AccessResult Cpu::accessFrontRegion(TlbEntry& e, VirtAddr va, unsigned size,
                                                      bool write, uint64_t value) {
  tlb_.hitFront();
  accessRegion(e, va, size, write, value);
  lock_.unlock(CpuLock::Side::kOwn);
  return {SigInfo{}, value};
}

template AccessResult Cpu::access<false>(VirtAddr va, unsigned size, uint64_t value);
template AccessResult Cpu::access<true>(VirtAddr va, unsigned size, uint64_t value);

[[gnu::noinline]] AccessResult Cpu::accessSlow(VirtAddr va, unsigned size, bool write,
                                               uint64_t value) {
  // The model has no split accesses: one that is not 1, 2, 4 or 8 bytes
  // naturally aligned is refused as a CPU with alignment checking refuses
  // it (SIGBUS, BUS_ADRALN), never by stopping the host.
  if (!isPowerOfTwo(size) || size > 8 || !isAligned(va.value(), size)) [[unlikely]]
    return {SigInfo{SigInfo::kSigbus, SigInfo::kBusAdraln, va}, 0};
  lock_.lock(CpuLock::Side::kOwn);
  return accessLocked(va, size, write, value);
}

[[gnu::noinline]] AccessResult Cpu::accessLocked(VirtAddr va, unsigned size, bool write,
                                                 uint64_t value) {
  VFIOMM_ASSERT_MSG(mmu_ != nullptr, "no user thread on this CPU");
  // A user access above TASK_SIZE faults whatever the tables say (the
  // MMU's U/S check, or #GP for a non-canonical address); the fault path
  // turns it into the signal. The TLB only ever sees user addresses.
  if (va.value() < kTaskSize && tryAccess(va, size, write, value)) {
    lock_.unlock(CpuLock::Side::kOwn);
    return {SigInfo{}, value};
  }
  UserContext* thread = thread_;
  lock_.unlock(CpuLock::Side::kOwn);
  return faultAndRetry(*thread, va, size, write, value);
}

[[gnu::noinline]] AccessResult Cpu::faultAndRetry(UserContext& thread, VirtAddr va, unsigned size,
                                                  bool write, uint64_t value) {
  for (unsigned attempt = 1;; ++attempt) {
    VFIOMM_ASSERT_MSG(attempt < kMaxFaultRetries, "page fault retried without end");
    {
      // The #PF handler runs with the CPU's "interrupts" enabled again: it
      // may sleep on locks and send shootdowns, including to this CPU.
      Running running(*this);
      const SigInfo sig = thread.pageFault(va, write ? FaultAccess::kWrite : FaultAccess::kRead);
      if (!sig.none()) return {sig, 0};
    }
    CpuLockGuard guard(lock_, CpuLock::Side::kOwn);
    VFIOMM_ASSERT_MSG(thread_ == &thread, "the faulting thread was switched out");
    if (va.value() < kTaskSize && tryAccess(va, size, write, value)) return {SigInfo{}, value};
  }
}

TlbEntry* Cpu::walk(VirtAddr va, bool write) {
  tlbWalk.add();
  const MmuContext::Leaf t = mmu_->walk(va);
  if (!t.present || !t.user) return nullptr;
  if (write && !t.writable) return nullptr;
  // The walk holds no page-table lock: a zap may clear the leaf between the
  // read and the fill; its flush then reaches this CPU after the access. A
  // walk that found no leaf caches nothing, so it has no such window.
  schedPoint("tlb.fill");
  const uint64_t pages = levelSize(t.level) >> kPageShift;
  TlbEntry entry;
  entry.level = t.level;
  entry.pfnBase = Pfn(t.pfn.value() & ~(pages - 1));
  entry.writable = t.writable;
  entry.region = physMemMap_.lookup(entry.pfnBase);
  return &tlb_.insert(mmId_, va, entry);
}

uint64_t Cpu::flushTlbRange(uint64_t mmId, VirtAddr start, VirtAddr end, unsigned strideShift) {
  CpuLockGuard guard(lock_, side());
  return tlb_.flushRange(mmId, start, end, strideShift);
}

void Cpu::flushTlbMm(uint64_t mmId) {
  CpuLockGuard guard(lock_, side());
  tlb_.flushMm(mmId);
}

void Cpu::flushTlbAll() {
  CpuLockGuard guard(lock_, side());
  tlb_.flushAll();
}

void Cpu::forgetRegions() {
  CpuLockGuard guard(lock_, side());
  tlb_.forgetRegions();
}

bool Cpu::tlbTranslates(uint64_t mmId, VirtAddr va) {
  CpuLockGuard guard(lock_, side());
  return tlb_.probe(mmId, va);
}

size_t Cpu::tlbEntries() {
  CpuLockGuard guard(lock_, side());
  return tlb_.size();
}

Cpu* Cpu::current() { return currentCpu; }

Cpu::Running::Running(Cpu& cpu) : previous_(currentCpu) { currentCpu = &cpu; }

Cpu::Running::~Running() { currentCpu = previous_; }

}  // namespace vfiomm
