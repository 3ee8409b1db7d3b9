// SharedProgress: how far each child process has got, in memory the parent
// and its forked children share, so that one progress bar in the parent can
// follow runs that happen in children (vfiomm runs each design in a child:
// the model's counters are process-wide).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace vfiomm::sim {

class SharedProgress {
 public:
  // One slot per child, all at 0; the mapping is inherited across fork().
  explicit SharedProgress(size_t slots);
  ~SharedProgress();
  SharedProgress(const SharedProgress&) = delete;
  SharedProgress& operator=(const SharedProgress&) = delete;

  size_t size() const { return slots_; }
  // `fraction` in [0, 1] (clamped), written by the child that owns `slot`.
  void set(size_t slot, double fraction);
  double get(size_t slot) const;
  // The mean over every slot: the whole job's fraction.
  double mean() const;

 private:
  // Lock-free 32-bit atomics are address-free, so they work across
  // processes; the fraction is kept in millionths.
  static constexpr uint32_t kScale = 1'000'000;
  static_assert(std::atomic<uint32_t>::is_always_lock_free);

  size_t slots_;
  std::atomic<uint32_t>* cells_;
};

}  // namespace vfiomm::sim
