// The lock layer's state of one kernel: lockdep's dependency graph, class
// usage and report log with its on/off switch, and the scheduling hook the
// kernel's locks call (src/check installs one to explore interleavings).
// A KernelContext owns one and binds it to the threads that run its kernel,
// so two kernels in one process neither share dependencies nor see each
// other's reports or scheduler.
#pragma once

#include <atomic>
#include <memory>

namespace vfiomm {

class SchedHook;
namespace lockdep {
struct State;
}  // namespace lockdep

class SyncContext {
 public:
  SyncContext();
  ~SyncContext();
  SyncContext(const SyncContext&) = delete;
  SyncContext& operator=(const SyncContext&) = delete;

  // The calling thread's context; a thread that takes a model lock without
  // one bound is a bug (it aborts).
  static SyncContext& current() {
    if (tCurrent == nullptr) [[unlikely]]
      unbound();
    return *tCurrent;
  }
  // Binds `context` (may be null) to the calling thread; returns the previous.
  static SyncContext* bind(SyncContext* context);
  // The calling thread's context, or null.
  static SyncContext* bound() { return tCurrent; }

  bool lockdepOn() const { return lockdepOn_.load(std::memory_order_relaxed); }
  void setLockdepOn(bool on) { lockdepOn_.store(on, std::memory_order_relaxed); }
  lockdep::State& lockdep() { return *lockdep_; }

  SchedHook& schedHook() const { return *hook_.load(std::memory_order_acquire); }
  // Installs `hook` (null: the default one); returns the previous.
  SchedHook* setSchedHook(SchedHook* hook);

 private:
  [[noreturn]] static void unbound();

  static inline thread_local SyncContext* tCurrent = nullptr;
  std::atomic<bool> lockdepOn_{true};
  std::atomic<SchedHook*> hook_;
  const std::unique_ptr<lockdep::State> lockdep_;
};

}  // namespace vfiomm
