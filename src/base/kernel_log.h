// KernelLog: the kernel's message buffer (printk, read with dmesg). One per
// simulated kernel; its Machine keeps it so that every layer can log. Only
// what the model's kernel code really prints goes here, in the kernel's
// wording, so that a test can look for the line a real kernel would show.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace vfiomm {

class KernelLog {
 public:
  // Like the kernel's log_buf, a ring: the oldest lines go first.
  static constexpr size_t kCapacity = 1024;

  // pr_info() and friends: one line, without the trailing newline.
  void print(std::string line);
  // dmesg: every line still in the buffer, oldest first.
  std::vector<std::string> lines() const;

 private:
  mutable std::mutex mu_;
  std::deque<std::string> lines_;
};

}  // namespace vfiomm
