// The threads a deterministic scheduler runs (src/check). Whoever starts a
// thread that runs model code under such a scheduler tells it first, so
// that thread ids follow the order of the program, which is deterministic,
// and not the order in which the OS happens to start the threads.
#pragma once

namespace vfiomm {

class SchedThreads {
 public:
  virtual ~SchedThreads() = default;

  // Called by the running thread before it starts a new thread; returns the
  // id that the new thread passes to attach().
  virtual unsigned spawn() = 0;
  // The new thread's first call: returns once the scheduler runs it.
  virtual void attach(unsigned id) = 0;
  // A thread's last call: it runs no more model code and hands the CPU on.
  virtual void detach() = 0;
};

}  // namespace vfiomm
