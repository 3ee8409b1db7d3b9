// lockdep: the kernel's runtime lock validator, modelled (Documentation/locking/
// lockdep-design.rst).
//
// Every lock of the model reports its acquisitions and releases here. lockdep
// keeps, per thread, the stack of held locks and, globally, a graph of
// dependencies between lock classes: "B was taken while A was held" adds the
// edge A -> B. A new edge that closes a cycle of any length is reported as a
// possible circular locking dependency, even when the two orders happened at
// different times and nothing deadlocked. Like Linux:
//  - a trylock adds no edge to the locks already held (it cannot block), but
//    once held it is the source of edges to later acquisitions;
//  - rwsem readers are non-recursive: a read acquisition takes part in cycles
//    like a write one, and taking a class for read that the thread already
//    holds (read or write) is "possible recursive locking", because a writer
//    queued in between deadlocks both;
//  - taking a class the thread already holds, in the same subclass, is
//    reported as recursive locking.
// Assertions (lockdep_assert_held{,_read,_write}, lockdep_assert_not_held)
// raise a WARN when they fail. Every report is counted and kept, so a test can
// assert on it, and printed in the shape of a kernel splat.
//
// lockdep can be switched off at run time (performance runs); the lock types
// then only keep the state they need for the non-lockdep assertions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/source_location.h"
#include "sync/lock_class.h"
#include "sync/sync_context.h"

namespace vfiomm::lockdep {

enum class Mode : uint8_t { kExclusive, kShared };

enum class ReportKind : uint8_t {
  kCircularDependency,  // "possible circular locking dependency detected"
  kRecursiveLocking,    // "possible recursive locking detected"
  kAssertHeld,          // lockdep_assert_held() failed
  kAssertHeldRead,      // lockdep_assert_held_read() failed
  kAssertHeldWrite,     // lockdep_assert_held_write() failed
  kAssertNotHeld,       // lockdep_assert_not_held() failed
  kAssertNoLocksHeld,   // a path that must hold nothing holds something
  kBadUnlock,           // "bad unlock balance detected"
};

std::string_view reportKindName(ReportKind kind);

struct Report {
  ReportKind kind;
  std::string lockClass;  // the class named in the report's first line
  std::string text;       // the full splat, as printed
};

// One acquisition, as it stands on a thread's held-lock stack.
struct HeldLock {
  const void* lock;
  const LockClass* cls;
  unsigned subclass;
  Mode mode;
  bool trylock;
  SourceLocation where;
};

// --- hooks called by the lock types ------------------------------------------

// Before a blocking acquisition (so a deadlock is reported before it hangs) or
// after a successful trylock.
void acquire(const void* lock, const LockClass& cls, unsigned subclass, Mode mode, bool trylock,
             SourceLocation where);
void release(const void* lock, SourceLocation where);
// downgrade_write(): the held entry changes from exclusive to shared in place.
void downgrade(const void* lock, SourceLocation where);
// The same, from a caller that knows the lock's class: a "bad unlock balance"
// report then names the lock as the kernel's does, not by its address.
void release(const void* lock, const LockClass& cls, SourceLocation where);
void downgrade(const void* lock, const LockClass& cls, SourceLocation where);

// --- queries and assertions ---------------------------------------------------

// Held by the calling thread (in any mode / in this mode).
bool isHeld(const void* lock);
bool isHeldMode(const void* lock, Mode mode);
// The calling thread's stack, oldest first.
std::vector<HeldLock> heldLocks();

// Each returns true when the assertion holds; otherwise raises a WARN report.
// With lockdep switched off they return true without checking (the lock
// types implement the kernel's non-lockdep checks themselves).
bool assertHeld(const void* lock, const LockClass& cls, SourceLocation where);
bool assertHeldRead(const void* lock, const LockClass& cls, SourceLocation where);
bool assertHeldWrite(const void* lock, const LockClass& cls, SourceLocation where);
bool assertNotHeld(const void* lock, const LockClass& cls, SourceLocation where);
bool assertNoLocksHeld(SourceLocation where = SourceLocation::current());

// Raises a WARN about `cls` (`what` says what is wrong) whether or not lockdep
// is enabled: the lock types' non-lockdep checks report through it, so their
// WARNs are counted with lockdep's.
void warn(ReportKind kind, const LockClass& cls, std::string_view what, SourceLocation where);

// --- control and results ------------------------------------------------------

void setEnabled(bool on);
// Inline: every lock operation asks.
inline bool enabled() { return SyncContext::current().lockdepOn(); }

// Who the calling thread is, for the report header ("qemu/1234 on CPU 3").
void setThreadIdentity(std::string_view comm, int pid, int cpu);
// What the calling thread last said it is: current->comm, current->pid and
// its CPU (-1: none), for the kernel's messages that name current.
struct ThreadIdentity {
  std::string comm;
  int pid;
  int cpu;
};
ThreadIdentity threadIdentity();

// Every report is counted; the first kMaxKeptReports are kept with their text
// (a WARN failing on every fault of a long run must not grow without bound).
// Each site prints once per kind (like WARN_ON_ONCE), except circular
// dependencies, which are reported once per edge that closes the cycle.
inline constexpr size_t kMaxKeptReports = 4096;
size_t reportCount();
size_t reportCount(ReportKind kind);
std::vector<Report> reports();
// Forgets the reports, their counts and which sites have printed.
void clearReports();
// Forget every recorded dependency (tests start from a clean graph).
void resetGraph();
// Where reports go besides the kept list; the default prints to stderr.
// Pass an empty function to stay quiet.
void setReportSink(std::function<void(const Report&)> sink);

// Whether the graph holds the edge from -> to (tests).
bool hasDependency(const LockClass& from, const LockClass& to);
// Every edge of the graph, as (held, taken) lock names ("&mm->mmap_lock",
// "&vdev->memory_lock/1" for a subclass), sorted.
std::vector<std::pair<std::string, std::string>> dependencies();

}  // namespace vfiomm::lockdep
