// The deterministic scheduler behind SchedHook: the threads of a run are
// real threads, but exactly one of them runs at a time. Every hook call is a
// scheduling point at which the strategy picks who runs next among the
// runnable threads, so a run is a function of the program and the
// strategy's choices, which are recorded for replay.
//
// It knows blocking: a thread in wait() is runnable only once its lock word
// differs from what it observed or a release on that word happened since;
// a thread that spins (the CPU ticket lock, the runner's polling) gives way
// to every thread that is not spinning until one of those makes progress,
// and when every runnable thread spins they take turns. A thread in a wait
// loop (beginWaitLoop: it repeats finished work until another thread acts)
// spins at every point it passes, so its points are no progress either.
// When no live thread can run it reports a deadlock with every thread's
// wait point and held locks.
//
// Thread safety: the state is touched only by the thread that holds the
// baton (current_), and handing the baton over is a release/acquire pair,
// so it needs no lock of its own (and must not use the model's locks, which
// would call back into it).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "check/strategy.h"
#include "sync/sched_hook.h"
#include "sync/sched_threads.h"

namespace vfiomm::check {

// Thrown on every scheduled thread once the scheduler gave up on a run (a
// deadlock or livelock nobody handled), so that they unwind and end.
struct Abandoned {};

class Scheduler : public SchedHook, public SchedThreads {
 public:
  // Called once when the run is stuck, on the thread that found out, with
  // the report; if it returns, every thread gets Abandoned.
  using StuckHandler = std::function<void(const std::string& report)>;

  Scheduler(Strategy& strategy, uint64_t maxPoints);

  // The calling thread becomes thread 0 and runs.
  void start();
  // The calling thread (thread 0) leaves the run; the others go on.
  void finish() { detach(); }

  void setStuckHandler(StuckHandler handler) { onStuck_ = std::move(handler); }

  // SchedHook: the scheduling points.
  void beforeAcquire(const void* lock) override;
  void wait(const void* lock, const std::atomic<uint32_t>& word, uint32_t observed) override;
  void afterRelease(const void* lock, std::atomic<uint32_t>& word, bool waiters) override;
  void schedPoint(std::string_view what) override;
  void spinPoint(std::string_view what) override;
  void beginWaitLoop() override;
  void endWaitLoop() override;

  // SchedThreads.
  unsigned spawn() override;
  void attach(unsigned id) override;
  void detach() override;

  // The thread that runs now (the caller, when called from a scheduled
  // thread): the id the choices use.
  unsigned running() const { return current_.load(std::memory_order_acquire); }
  uint64_t points() const { return points_; }
  // The thread picked at every point that had more than one candidate.
  const std::vector<unsigned>& choices() const { return choices_; }
  // At every such point, the pick that would have preempted nobody
  // (defaultPick()).
  const std::vector<unsigned>& defaults() const { return defaults_; }
  // Choices that took the CPU from a running thread that could go on.
  uint64_t preemptions() const { return preemptions_; }
  // Empty unless the run deadlocked or livelocked.
  const std::string& stuck() const { return stuck_; }

 private:
  enum class State : uint8_t { kRunnable, kWaiting, kDone };
  enum class Point : uint8_t { kStart, kAcquire, kWait, kRelease, kNamed };

  struct ThreadState {
    State state = State::kRunnable;
    bool spinning = false;
    bool inWaitLoop = false;  // every point of it spins (beginWaitLoop)
    bool woken = false;       // a release on the word happened while waiting
    const std::atomic<uint32_t>* word = nullptr;
    uint32_t observed = 0;
    Point point = Point::kStart;
    const void* lock = nullptr;
    std::string_view name;          // of a named point; the caller's literal
    uint64_t lastPicked = 0;        // points_ when it last got the CPU
    std::vector<std::string> held;  // lockdep's held locks, when waiting
  };

  static constexpr unsigned kNobody = ~0u;
  static constexpr unsigned kAbandoned = ~0u - 1;

  bool mine() const;
  void note(Point point, const void* lock, std::string_view name);
  void reschedule(bool spinPointHere = false);
  bool runnable(const ThreadState& t) const;
  std::vector<unsigned> candidates() const;
  unsigned choose(const std::vector<unsigned>& cands);
  void handOver(unsigned next);
  void parkUntilRunning(unsigned me) const;
  [[noreturn]] void giveUp(std::string report);
  std::string deadlockReport() const;
  std::string describe(unsigned id) const;

  Strategy& strategy_;
  const uint64_t maxPoints_;
  StuckHandler onStuck_;
  std::atomic<unsigned> current_{kNobody};
  std::vector<ThreadState> threads_;
  uint64_t points_ = 0;
  std::vector<unsigned> choices_;
  std::vector<unsigned> defaults_;
  uint64_t preemptions_ = 0;
  std::string stuck_;
};

}  // namespace vfiomm::check
