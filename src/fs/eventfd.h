// Eventfd: the counter behind an eventfd(2) file. The kernel signals it
// (eventfd_signal) to wake a user waiting on it; the user reads the count.
#pragma once

#include <atomic>
#include <cstdint>

namespace vfiomm {

class Eventfd {
 public:
  explicit Eventfd(uint64_t initval) : count_(initval) {}

  void signal() { count_.fetch_add(1, std::memory_order_acq_rel); }
  // read(2) without EFD_SEMAPHORE: the count, which drops to 0.
  uint64_t read() { return count_.exchange(0, std::memory_order_acq_rel); }
  uint64_t count() const { return count_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint64_t> count_;
};

}  // namespace vfiomm
