// RwSemaphore models struct rw_semaphore (mmap_lock, i_mmap_rwsem,
// vdev->memory_lock): many readers or one writer, sleeping. As in Linux a
// waiting writer holds back new readers (so a reader that takes the lock
// again while a writer waits deadlocks — which lockdep reports), the
// trylocks fail while anyone waits, and a waiter passed too often reserves
// the lock for itself (the handoff), so no waiter starves.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/source_location.h"
#include "sync/lock_class.h"
#include "sync/thread_annotations.h"

namespace vfiomm {

class CAPABILITY("rwsem") RwSemaphore {
 public:
  explicit RwSemaphore(const LockClass& cls) : cls_(cls) {}
  RwSemaphore(const RwSemaphore&) = delete;
  RwSemaphore& operator=(const RwSemaphore&) = delete;

  using Loc = SourceLocation;

  void downRead(Loc where = Loc::current()) ACQUIRE_SHARED();
  bool downReadTrylock(Loc where = Loc::current()) TRY_ACQUIRE_SHARED(true);
  void upRead(Loc where = Loc::current()) RELEASE_SHARED();

  void downWrite(Loc where = Loc::current()) ACQUIRE();
  void downWriteNested(unsigned subclass, Loc where = Loc::current()) ACQUIRE();
  bool downWriteTrylock(Loc where = Loc::current()) TRY_ACQUIRE(true);
  void upWrite(Loc where = Loc::current()) RELEASE();
  // downgrade_write(): write -> read without letting a writer in between.
  void downgradeWrite(Loc where = Loc::current()) RELEASE() ACQUIRE_SHARED();

  // lockdep_assert_held*(). With lockdep off they fall back to the checks the
  // kernel makes without lockdep (rwsem_assert_held{,_write}_nolockdep: held
  // by anyone / write-held by anyone) and WARN through lockdep's report list
  // all the same, so the WARN of mm >= 6.10-rc1 shows in performance runs.
  void assertHeld(Loc where = Loc::current()) const ASSERT_SHARED_CAPABILITY(this);
  void assertHeldRead(Loc where = Loc::current()) const ASSERT_SHARED_CAPABILITY(this);
  void assertHeldWrite(Loc where = Loc::current()) const ASSERT_CAPABILITY(this);
  void assertNotHeld(Loc where = Loc::current()) const;

  bool isLocked() const;       // rwsem_is_locked(): by anyone, any mode
  bool isWriteLocked() const;  // by anyone, for write

  const LockClass& lockClass() const { return cls_; }

 private:
  void downReadSlow();
  void downWriteSlow();
  // Sleeps until the word may have changed from `w`, first marking that
  // someone sleeps on it and, once this waiter lost `losses` times, taking
  // the handoff. False: the word changed before that (`w` is reloaded) or
  // this waiter just took the handoff; either way the caller looks again.
  bool waitForWord(uint32_t& w, unsigned& losses, bool& handoff);

  const LockClass& cls_;
  std::atomic<uint32_t> word_{0};  // writer, waiters, waiting writers, readers: rw_semaphore.cc
};

class SCOPED_CAPABILITY ReadGuard {
 public:
  explicit ReadGuard(RwSemaphore& s, SourceLocation where = SourceLocation::current())
      ACQUIRE_SHARED(s)
      : s_(s), where_(where) {
    s_.downRead(where_);
  }
  ~ReadGuard() RELEASE() { s_.upRead(where_); }
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;

 private:
  RwSemaphore& s_;
  SourceLocation where_;
};

class SCOPED_CAPABILITY WriteGuard {
 public:
  explicit WriteGuard(RwSemaphore& s, SourceLocation where = SourceLocation::current()) ACQUIRE(s)
      : s_(s), where_(where) {
    s_.downWrite(where_);
  }
  ~WriteGuard() RELEASE() { s_.upWrite(where_); }
  WriteGuard(const WriteGuard&) = delete;
  WriteGuard& operator=(const WriteGuard&) = delete;

 private:
  RwSemaphore& s_;
  SourceLocation where_;
};

}  // namespace vfiomm
