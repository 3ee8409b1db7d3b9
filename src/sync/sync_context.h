// The lock layer's state of one kernel: lockdep's dependency graph, class
// usage and report log with its on/off switch, and the scheduling hook the
// kernel's locks call (src/check installs one to explore interleavings).
// A KernelContext owns one and binds it to the threads that run its kernel,
// so two kernels in one process neither share dependencies nor see each
// other's reports or scheduler.
#pragma once

#include <atomic>
#include <cstdint>
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

  // Whether a hook other than the default one is installed: only then do
  // the hook's calls below and schedPoint() (sched_hook.h) reach it.
  bool scheduled() const { return scheduled_.load(std::memory_order_relaxed); }

  // The hook's calls around a lock word, as the locks make them. With the
  // default hook installed they cost a load and a predicted branch: its
  // beforeAcquire() does nothing and its afterRelease() only wakes sleepers.
  void beforeAcquire(const void* lock) {
    if (scheduled()) [[unlikely]]
      hookBeforeAcquire(lock);
  }
  void afterRelease(const void* lock, std::atomic<uint32_t>& word, bool waiters) {
    if (scheduled()) [[unlikely]]
      hookAfterRelease(lock, word, waiters);
    else if (waiters)
      word.notify_all();
  }

 private:
  [[noreturn]] static void unbound();
  // The installed hook's calls, out of line: sched_hook.h includes this
  // header for schedPoint()'s inline test, so SchedHook is incomplete here.
  void hookBeforeAcquire(const void* lock);
  void hookAfterRelease(const void* lock, std::atomic<uint32_t>& word, bool waiters);

  static inline thread_local SyncContext* tCurrent = nullptr;
  std::atomic<bool> lockdepOn_{true};
  std::atomic<SchedHook*> hook_;
  std::atomic<bool> scheduled_{false};  // hook_ is not the default one
  const std::unique_ptr<lockdep::State> lockdep_;
};

}  // namespace vfiomm
