// SpinLock models spinlock_t: exclusive, never sleeps while held. The model
// uses it where the kernel does (page-table locks, mm->page_table_lock).
#pragma once

#include <atomic>
#include <cstdint>

#include "base/source_location.h"
#include "sync/lock_class.h"
#include "sync/thread_annotations.h"

namespace vfiomm {

class CAPABILITY("spinlock") SpinLock {
 public:
  explicit SpinLock(const LockClass& cls) : cls_(&cls) {}
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock(SourceLocation where = SourceLocation::current()) ACQUIRE();
  void lockNested(unsigned subclass, SourceLocation where = SourceLocation::current()) ACQUIRE();
  bool tryLock(SourceLocation where = SourceLocation::current()) TRY_ACQUIRE(true);
  void unlock(SourceLocation where = SourceLocation::current()) RELEASE();

  void assertHeld(SourceLocation where = SourceLocation::current()) const ASSERT_CAPABILITY(this);
  bool isLocked() const;

  const LockClass& lockClass() const { return *cls_; }

 private:
  void lockSlow();

  const LockClass* cls_;
  std::atomic<uint32_t> word_{0};  // kLocked | kWaiters, see spin_lock.cc
};

class SCOPED_CAPABILITY SpinGuard {
 public:
  explicit SpinGuard(SpinLock& l, SourceLocation where = SourceLocation::current()) ACQUIRE(l)
      : l_(l), where_(where) {
    l_.lock(where_);
  }
  SpinGuard(SpinLock& l, unsigned subclass, SourceLocation where = SourceLocation::current())
      ACQUIRE(l)
      : l_(l), where_(where) {
    l_.lockNested(subclass, where_);
  }
  ~SpinGuard() RELEASE() { l_.unlock(where_); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& l_;
  SourceLocation where_;
};

}  // namespace vfiomm
