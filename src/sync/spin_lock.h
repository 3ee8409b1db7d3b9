// SpinLock models spinlock_t: exclusive, never sleeps while held. The model
// uses it where the kernel does (page-table locks, mm->page_table_lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <source_location>

#include "sync/lock_class.h"
#include "sync/thread_annotations.h"

namespace vfiomm {

class CAPABILITY("spinlock") SpinLock {
 public:
  explicit SpinLock(const LockClass& cls) : cls_(&cls) {}
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock(std::source_location where = std::source_location::current()) ACQUIRE();
  void lockNested(unsigned subclass,
                  std::source_location where = std::source_location::current()) ACQUIRE();
  bool tryLock(std::source_location where = std::source_location::current()) TRY_ACQUIRE(true);
  void unlock(std::source_location where = std::source_location::current()) RELEASE();

  void assertHeld(std::source_location where = std::source_location::current()) const
      ASSERT_CAPABILITY(this);
  bool isLocked() const;

  const LockClass& lockClass() const { return *cls_; }

 private:
  void lockSlow(unsigned subclass, std::source_location where);

  const LockClass* cls_;
  std::atomic<uint32_t> word_{0};  // implementation-defined state
};

class SCOPED_CAPABILITY SpinGuard {
 public:
  explicit SpinGuard(SpinLock& l, std::source_location where = std::source_location::current())
      ACQUIRE(l)
      : l_(l), where_(where) {
    l_.lock(where_);
  }
  SpinGuard(SpinLock& l, unsigned subclass,
            std::source_location where = std::source_location::current()) ACQUIRE(l)
      : l_(l), where_(where) {
    l_.lockNested(subclass, where_);
  }
  ~SpinGuard() RELEASE() { l_.unlock(where_); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& l_;
  std::source_location where_;
};

}  // namespace vfiomm
