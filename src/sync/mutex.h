// Mutex models the kernel's struct mutex (sleeping, exclusive, owner-tracked,
// and handing the lock to a waiter that was passed, so none starves).
#pragma once

#include <atomic>
#include <cstdint>

#include "base/source_location.h"
#include "sync/lock_class.h"
#include "sync/thread_annotations.h"

namespace vfiomm {

class CAPABILITY("mutex") Mutex {
 public:
  explicit Mutex(const LockClass& cls) : cls_(cls) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock(SourceLocation where = SourceLocation::current()) ACQUIRE();
  // mutex_lock_nested(): same class, taken at a deeper nesting level.
  void lockNested(unsigned subclass, SourceLocation where = SourceLocation::current()) ACQUIRE();
  bool tryLock(SourceLocation where = SourceLocation::current()) TRY_ACQUIRE(true);
  void unlock(SourceLocation where = SourceLocation::current()) RELEASE();

  // lockdep_assert_held(); without lockdep: held by the calling thread.
  void assertHeld(SourceLocation where = SourceLocation::current()) const ASSERT_CAPABILITY(this);
  void assertNotHeld(SourceLocation where = SourceLocation::current()) const;
  bool isLocked() const;       // mutex_is_locked(): by anyone
  bool heldByCurrent() const;  // owner == current

  const LockClass& lockClass() const { return cls_; }

 private:
  void lockSlow();

  const LockClass& cls_;
  std::atomic<uint32_t> word_{0};   // kLocked | kWaiters | kHandoff, see mutex.cc
  std::atomic<uint64_t> owner_{0};  // id of the holding thread, 0 when free
};

class SCOPED_CAPABILITY MutexGuard {
 public:
  explicit MutexGuard(Mutex& m, SourceLocation where = SourceLocation::current()) ACQUIRE(m)
      : m_(m), where_(where) {
    m_.lock(where_);
  }
  ~MutexGuard() RELEASE() { m_.unlock(where_); }
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;

 private:
  Mutex& m_;
  SourceLocation where_;
};

}  // namespace vfiomm
