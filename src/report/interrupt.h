// What SIGINT, SIGTERM and SIGHUP undo before vfiomm exits with status
// 128 + the signal's number (issue 17): files half written — output files
// under their temporary names — are removed, so that an interrupted run
// leaves the previous outputs as they were and nothing else. The designs'
// threads end with the process.
//
// The handler does it itself, with async-signal-safe calls only, on
// whichever thread the signal lands (a `run` may be deep in the model's
// threads); what it undoes sits in fixed-size tables that registering never
// reallocates. Register with the signals blocked (InterruptsBlocked) when a
// signal between creating a thing and registering it would leak it.
#pragma once

#include <signal.h>

#include <cstddef>
#include <string>

namespace vfiomm::report {

// The CLI's main installs the handler before anything runs; a signal
// ignored when vfiomm started (nohup, a background job of a shell without
// job control) stays ignored.
void installInterruptHandlers();

// Blocks the handled signals in the calling thread while alive.
class InterruptsBlocked {
 public:
  InterruptsBlocked();
  ~InterruptsBlocked();
  InterruptsBlocked(const InterruptsBlocked&) = delete;
  InterruptsBlocked& operator=(const InterruptsBlocked&) = delete;

 private:
  sigset_t old_;
};

// While alive: a signal removes the file at `path` and prints `note` (a
// whole line, may be empty) on stderr. Throws std::runtime_error when the
// table is full or the path longer than PATH_MAX.
class RemoveOnInterrupt {
 public:
  static constexpr size_t kSlots = 64;
  explicit RemoveOnInterrupt(const std::string& path, const std::string& note = {});
  ~RemoveOnInterrupt();
  RemoveOnInterrupt(const RemoveOnInterrupt&) = delete;
  RemoveOnInterrupt& operator=(const RemoveOnInterrupt&) = delete;

 private:
  size_t slot_;
};

}  // namespace vfiomm::report
