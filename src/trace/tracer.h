// Tracer: the sink of the model's tracepoints, a bounded buffer of
// TraceEvents shared by every thread.
//
// A tracepoint is written as
//     if (trace::enabled()) [[unlikely]] { ... build and record the event ... }
// so that with tracing off it costs one load and a predictable branch
// (the 4 KiB fault path is ~170 ns and has several). With tracing on the
// events go to one mutex-protected ring buffer: tracing is for looking at a
// run, not for measuring it, and one lock keeps the order and the drop count
// exact. When the ring is full the oldest event is overwritten (ftrace's
// default "overwrite" mode), so a run of millions of faults keeps its last
// `limit` events and counts the others as dropped.
//
// Who an event belongs to (pid, tid) is a per-thread setting: the fault path
// sets it from its Task, the scenario runner before each event it runs. The
// CPU comes from the mm layer through a resolver, as trace/ may include only
// base/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trace/trace_event.h"
#include "trace/trace_log.h"

namespace vfiomm::trace {

class Tracer;

namespace detail {
// The tracer of the kernel the calling thread runs (KernelContext binds it).
inline thread_local Tracer* tTracer = nullptr;
}  // namespace detail

// The switch every tracepoint tests: whether the calling thread's kernel
// traces. A thread bound to no kernel does not.
inline bool enabled();

class Tracer {
 public:
  static constexpr size_t kDefaultLimit = 1'000'000;

  Tracer() = default;
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // The calling thread's tracer; only called once enabled() said yes, or
  // by a thread that runs a kernel (it aborts otherwise).
  static Tracer& current();
  // Binds `tracer` (may be null) to the calling thread; returns the previous.
  static Tracer* bind(Tracer* tracer);
  // Acquire (a plain load on x86, as cheap as relaxed) so that a tracepoint
  // that sees it on also sees the clock start() set.
  bool on() const { return on_.load(std::memory_order_acquire); }

  // What now() counts: wall time, or a logical clock that advances one
  // microsecond at every reading, so that a run whose threads take turns
  // deterministically (`vfiomm check`) has a trace that is a function of
  // its schedule.
  enum class Clock : uint8_t { kWall, kLogical };

  // Empties the buffer and the names, restarts the clock, and turns the
  // tracepoints on. `limit` >= 1.
  void start(size_t limit, std::string title, unsigned cpus, Clock clock = Clock::kWall);
  // Turns the tracepoints off and hands over what the buffer holds.
  TraceLog stop();

  // Events recorded since start() (or since stop(): none should be).
  uint64_t recorded();
  // ns since start().
  uint64_t now() const;
  // Fills in pid, tid and (for kCurrentCpu) cpu, and stores the event.
  void record(TraceEvent e);
  // A copy of `s` that lives until the next start() (and then in the TraceLog).
  std::string_view intern(std::string_view s);
  void nameProcess(int pid, std::string name);
  void nameThread(int pid, int tid, std::string name);
  uint64_t newFlowId() { return nextFlow_.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::atomic<bool> on_{false};
  Clock clock_ = Clock::kWall;
  std::chrono::steady_clock::time_point t0_{};
  mutable std::atomic<uint64_t> ticks_{0};  // Clock::kLogical's readings so far
  std::atomic<uint64_t> nextFlow_{1};
  std::mutex mu_;  // not a model lock: lockdep and the tracepoints never see it
  size_t limit_ = kDefaultLimit;
  size_t head_ = 0;  // the oldest event once the ring is full
  uint64_t recorded_ = 0;
  std::vector<TraceEvent> ring_;
  TraceLog names_;  // title, cpus, process/thread names and interned strings
};

inline bool enabled() { return detail::tTracer != nullptr && detail::tTracer->on(); }

// --- who the calling thread is ----------------------------------------------------

void setCurrentTask(int pid, int tid);
std::pair<int, int> currentTask();

using CpuResolver = int (*)();
// The mm layer tells which simulated CPU the calling thread runs on (-1: none).
void setCpuResolver(CpuResolver resolver);

// The flow id of the zap the calling thread is inside (0: none): a TLB flush
// recorded meanwhile is linked to it.
uint64_t currentFlow();

class FlowScope {
 public:
  explicit FlowScope(uint64_t flow);
  ~FlowScope();
  FlowScope(const FlowScope&) = delete;
  FlowScope& operator=(const FlowScope&) = delete;

 private:
  uint64_t previous_;
};

}  // namespace vfiomm::trace
