#include "sync/lock_trace.h"

#include <bit>

namespace vfiomm::lock_trace {

void record(uint64_t begin, const void* lock, const LockClass& cls, uint8_t flags) {
  trace::Tracer& t = trace::Tracer::current();
  trace::TraceEvent e;
  e.kind = trace::EventKind::kLockAcquire;
  e.ts = begin;
  e.dur = t.now() - begin;
  e.addr = std::bit_cast<uintptr_t>(lock);
  e.name = cls.name();
  e.flags = flags;
  t.record(e);
}

void recordRelease(const void* lock, const LockClass& cls, bool write) {
  trace::Tracer& t = trace::Tracer::current();
  trace::TraceEvent e;
  e.kind = trace::EventKind::kLockRelease;
  e.ts = t.now();
  e.addr = std::bit_cast<uintptr_t>(lock);
  e.name = cls.name();
  e.flags = write ? trace::eventflag::kWrite : uint8_t{0};
  t.record(e);
}

}  // namespace vfiomm::lock_trace
