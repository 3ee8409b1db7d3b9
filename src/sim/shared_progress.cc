#include "sim/shared_progress.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <new>
#include <stdexcept>

namespace vfiomm::sim {

SharedProgress::SharedProgress(size_t slots) : slots_(slots) {
  const size_t bytes = std::max<size_t>(slots, 1) * sizeof(std::atomic<uint32_t>);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("mmap of the shared progress page failed");
  cells_ = static_cast<std::atomic<uint32_t>*>(p);
  for (size_t i = 0; i < std::max<size_t>(slots, 1); ++i) new (&cells_[i]) std::atomic<uint32_t>(0);
}

SharedProgress::~SharedProgress() {
  ::munmap(cells_, std::max<size_t>(slots_, 1) * sizeof(std::atomic<uint32_t>));
}

void SharedProgress::set(size_t slot, double fraction) {
  if (slot >= slots_) return;
  const double f = std::isfinite(fraction) ? std::clamp(fraction, 0.0, 1.0) : 0.0;
  cells_[slot].store(static_cast<uint32_t>(std::lround(f * kScale)), std::memory_order_relaxed);
}

double SharedProgress::get(size_t slot) const {
  if (slot >= slots_) return 0;
  return cells_[slot].load(std::memory_order_relaxed) / double{kScale};
}

double SharedProgress::mean() const {
  if (slots_ == 0) return 1;
  double sum = 0;
  for (size_t i = 0; i < slots_; ++i) sum += get(i);
  return sum / static_cast<double>(slots_);
}

}  // namespace vfiomm::sim
