// The lock tracepoints of the sleeping locks (Mutex, RwSemaphore): an
// acquisition is one span from "start locking" to "acquired", marked
// contended when it had to wait, and a release is an instant. The writers
// turn them into mmap_lock's tracepoints or lockdep's lock_* ones.
//
// Usage in a lock:  const uint64_t t = lock_trace::begin();  ...take it...
// lock_trace::acquired(t, ...). With tracing off begin() is one relaxed load
// and acquired() one compare of a local.
#pragma once

#include <cstdint>

#include "sync/lock_class.h"
#include "trace/tracer.h"

namespace vfiomm::lock_trace {

inline constexpr uint64_t kOff = UINT64_MAX;

inline uint64_t begin() { return trace::enabled() ? trace::Tracer::current().now() : kOff; }

void record(uint64_t begin, const void* lock, const LockClass& cls, uint8_t flags);
void recordRelease(const void* lock, const LockClass& cls, bool write);

inline void acquired(uint64_t begin, const void* lock, const LockClass& cls, uint8_t flags) {
  if (begin != kOff) [[unlikely]]
    record(begin, lock, cls, flags);
}

inline void released(const void* lock, const LockClass& cls, bool write) {
  if (trace::enabled()) [[unlikely]]
    recordRelease(lock, cls, write);
}

}  // namespace vfiomm::lock_trace
