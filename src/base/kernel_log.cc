#include "base/kernel_log.h"

#include <utility>

namespace vfiomm {

void KernelLog::print(std::string line) {
  std::lock_guard g(mu_);
  if (lines_.size() == kCapacity) lines_.pop_front();
  lines_.push_back(std::move(line));
}

std::vector<std::string> KernelLog::lines() const {
  std::lock_guard g(mu_);
  return {lines_.begin(), lines_.end()};
}

}  // namespace vfiomm
