// Mutex models the kernel's struct mutex (sleeping, exclusive, owner-tracked).
#pragma once

#include <atomic>
#include <cstdint>
#include <source_location>

#include "sync/lock_class.h"
#include "sync/thread_annotations.h"

namespace vfiomm {

class CAPABILITY("mutex") Mutex {
 public:
  explicit Mutex(const LockClass& cls) : cls_(cls) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock(std::source_location where = std::source_location::current()) ACQUIRE();
  // mutex_lock_nested(): same class, taken at a deeper nesting level.
  void lockNested(unsigned subclass,
                  std::source_location where = std::source_location::current()) ACQUIRE();
  bool tryLock(std::source_location where = std::source_location::current()) TRY_ACQUIRE(true);
  void unlock(std::source_location where = std::source_location::current()) RELEASE();

  // lockdep_assert_held(); without lockdep: held by the calling thread.
  void assertHeld(std::source_location where = std::source_location::current()) const
      ASSERT_CAPABILITY(this);
  void assertNotHeld(std::source_location where = std::source_location::current()) const;
  bool isLocked() const;        // mutex_is_locked(): by anyone
  bool heldByCurrent() const;   // owner == current

  const LockClass& lockClass() const { return cls_; }

 private:
  void lockSlow(unsigned subclass, std::source_location where);

  const LockClass& cls_;
  std::atomic<uint32_t> word_{0};  // implementation-defined state
  std::atomic<uint64_t> owner_{0};  // id of the holding thread, 0 when free
};

class SCOPED_CAPABILITY MutexGuard {
 public:
  explicit MutexGuard(Mutex& m, std::source_location where = std::source_location::current())
      ACQUIRE(m)
      : m_(m), where_(where) {
    m_.lock(where_);
  }
  ~MutexGuard() RELEASE() { m_.unlock(where_); }
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;

 private:
  Mutex& m_;
  std::source_location where_;
};

}  // namespace vfiomm
