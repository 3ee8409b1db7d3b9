// A lock class, as lockdep sees locks: every lock initialised at one place in
// the kernel shares one class ("&mm->mmap_lock", "&vdev->memory_lock"), and
// dependencies are recorded between classes, not instances.
//
// Declare each class once, as a namespace-scope `inline const LockClass`
// beside the type that owns the lock, and pass it to the lock's constructor.
#pragma once

#include <cstdint>
#include <string_view>

namespace vfiomm {

class LockClass {
 public:
  // Subclasses model lockdep's nesting annotations (down_write_nested(...,
  // SINGLE_DEPTH_NESTING)): the same class taken twice on purpose, ordered by
  // subclass. Linux allows 8.
  static constexpr unsigned kMaxSubclasses = 8;
  // lockdep's MAX_LOCKDEP_KEYS: ids are dense from 0 and index lockdep's
  // tables, so declaring more classes than this is a bug of the model.
  static constexpr uint32_t kMaxClasses = 128;

  explicit LockClass(std::string_view name);
  LockClass(const LockClass&) = delete;
  LockClass& operator=(const LockClass&) = delete;

  std::string_view name() const { return name_; }
  uint32_t id() const { return id_; }

 private:
  std::string_view name_;  // a string literal: lock classes live forever
  uint32_t id_;
};

}  // namespace vfiomm
