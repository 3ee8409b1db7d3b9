// What a design does to bring mappings back after a zap, other than waiting
// for faults: no kernel does anything (NoRefill); `prefault` walks the
// address space (PrefaultWalk).
#pragma once

namespace vfiomm {

class Vma;

class RefillPolicy {
 public:
  virtual ~RefillPolicy() = default;

  // A fault that maps less than its VMA succeeded; memory_lock is still
  // held for read, so whatever is filled now is zapped by the next zap.
  virtual void faulted(Vma& vma) = 0;
  // Memory decode came back (the state change is done and memory_lock is
  // no longer held).
  virtual void memoryEnabled() = 0;
  // The same moment, still inside the memory_lock write section (only the
  // naive prefault variant acts here, to show why it must not).
  virtual void memoryEnabledLocked() = 0;
};

// Every kernel: mappings come back one fault at a time.
class NoRefill final : public RefillPolicy {
 public:
  void faulted(Vma&) override {}
  void memoryEnabled() override {}
  void memoryEnabledLocked() override {}
};

}  // namespace vfiomm
