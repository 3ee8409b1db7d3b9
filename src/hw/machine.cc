#include "hw/machine.h"

#include "base/assert.h"
#include "base/counter.h"
#include "sync/sched_hook.h"
#include "trace/tracer.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(tlbShootdown, "tlb.shootdown",
               "TLB flush IPIs sent to other CPUs (one per remote CPU per flush)");
VFIOMM_COUNTER(tlbFlushLocal, "tlb.flush.local", "TLB flushes the initiating CPU did on itself");

void bump(std::atomic<uint64_t>& total, uint64_t n = 1) {
  total.fetch_add(n, std::memory_order_relaxed);
}

// Tells the tracer which simulated CPU a thread runs on.
int currentCpuForTrace() {
  const Cpu* c = Cpu::current();
  return c == nullptr ? -1 : static_cast<int>(c->id());
}
[[maybe_unused]] const bool kCpuResolverSet = (trace::setCpuResolver(currentCpuForTrace), true);

// tlb:tlb_flush on `cpu` (pages: 4 KiB pages of the range, or all of the mm).
void traceFlush(uint64_t begin, int cpu, trace::TlbFlushReason reason, bool full, VirtAddr start,
                VirtAddr end) {
  trace::Tracer& t = trace::Tracer::current();
  trace::TraceEvent e;
  e.kind = trace::EventKind::kTlbFlush;
  e.ts = begin;
  e.dur = t.now() - begin;
  e.cpu = static_cast<int16_t>(cpu);
  e.addr = start.value();
  e.end = end.value();
  e.value = (end - start) >> kPageShift;
  e.order = static_cast<uint8_t>(reason);
  e.flags = full ? trace::eventflag::kFullFlush : uint8_t{0};
  e.flow = trace::currentFlow();
  t.record(e);
}

}  // namespace

Machine::Machine(const MachineConfig& config)
    : pageTables_(config.pageTables != nullptr ? *config.pageTables : ownPageTables_) {
  VFIOMM_ASSERT_MSG(config.cpus >= 1 && config.cpus <= kMaxCpus, "1 to 64 CPUs");
  cpus_.reserve(config.cpus);
  for (unsigned id = 0; id < config.cpus; ++id)
    cpus_.push_back(std::make_unique<Cpu>(id, physMemMap_, config.tlb));
}

Cpu& Machine::cpu(unsigned id) {
  VFIOMM_ASSERT(id < cpus_.size());
  return *cpus_[id];
}

void Machine::registerRegion(PhysRegion& region) { physMemMap_.registerRegion(region); }

void Machine::unregisterRegion(PhysRegion& region) {
  physMemMap_.unregisterRegion(region);
  // The grace period: a CPU that still uses the region holds its lock until
  // the access ends, and afterwards finds no TLB entry pointing at it.
  for (auto& c : cpus_) c->forgetRegions();
}

void Machine::flushTlbMmRange(uint64_t mmId, uint64_t cpumask, VirtAddr start, VirtAddr end,
                              unsigned strideShift, bool freedTables, int initiatorCpu) {
  VFIOMM_ASSERT(start <= end);
  VFIOMM_ASSERT(strideShift >= kPageShift && strideShift < 64);
  VFIOMM_ASSERT(initiatorCpu >= -1 && initiatorCpu < static_cast<int>(cpus_.size()));
  VFIOMM_ASSERT_MSG(cpus_.size() == kMaxCpus || (cpumask >> cpus_.size()) == 0,
                    "cpumask names a CPU this machine does not have");
  const bool onlyTables = freedTables && start.value() == 0 && end.value() == 0;
  const bool full = onlyTables || ((end - start) >> strideShift) > kTlbSinglePageFlushCeiling;
  bump(flushTotals_.flushes);
  const bool traced = trace::enabled();
  if (traced && initiatorCpu >= 0 && (cpumask & ~(uint64_t{1} << initiatorCpu)) != 0) [[unlikely]]
    traceFlush(trace::Tracer::current().now(), initiatorCpu, trace::TlbFlushReason::kRemoteSendIpi,
               full, start, end);
  for (unsigned id = 0; id < cpus_.size(); ++id) {
    if ((cpumask >> id & 1) == 0) continue;
    // Until its flush (the IPI's handler, for a remote CPU) a CPU goes on
    // translating through what it cached.
    schedPoint("tlb.flush");
    const uint64_t begin = traced ? trace::Tracer::current().now() : 0;
    Cpu& c = *cpus_[id];
    if (full) {
      c.flushTlbMm(mmId);
      bump(flushTotals_.fullFlushes);
    } else {
      bump(flushTotals_.pagesFlushed, c.flushTlbRange(mmId, start, end, strideShift));
    }
    if (static_cast<int>(id) == initiatorCpu) {
      bump(flushTotals_.localFlushes);
      tlbFlushLocal.add();
    } else {
      bump(flushTotals_.shootdowns);
      tlbShootdown.add();
    }
    if (traced) [[unlikely]]
      traceFlush(begin, static_cast<int>(id),
                 static_cast<int>(id) == initiatorCpu ? trace::TlbFlushReason::kLocalMmShootdown
                                                      : trace::TlbFlushReason::kRemoteShootdown,
                 full, start, end);
  }
}

int Machine::currentCpuId() const {
  const Cpu* c = Cpu::current();
  if (c == nullptr || c->id() >= cpus_.size() || cpus_[c->id()].get() != c) return -1;
  return static_cast<int>(c->id());
}

}  // namespace vfiomm
