#include "sim/work_pool.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace vfiomm::sim {

void runConcurrently(size_t n, unsigned jobs, const std::function<void(size_t)>& work,
                     const std::function<void(size_t)>& started,
                     const std::function<void()>& tick) {
  std::mutex mu;  // the pool's own bookkeeping, not a model lock
  std::condition_variable finished;
  size_t running = 0;
  std::vector<std::exception_ptr> errors(n);
  bool failed = false;
  std::vector<std::thread> threads;
  threads.reserve(n);
  const size_t slots = std::max<size_t>(jobs, 1);
  std::unique_lock lock(mu);
  for (size_t next = 0; next < n || running > 0;) {
    if (next < n && running < slots && !failed) {
      if (started) started(next);
      ++running;
      threads.emplace_back([&, i = next] {
        std::exception_ptr error;
        try {
          work(i);
        } catch (...) {
          error = std::current_exception();
        }
        const std::lock_guard guard(mu);
        errors[i] = error;
        failed = failed || error != nullptr;
        --running;
        finished.notify_one();
      });
      ++next;
      continue;
    }
    if (running == 0) break;  // a failure stopped the rest from starting
    finished.wait_for(lock, std::chrono::milliseconds(kTickMilliseconds));
    if (tick) {
      lock.unlock();
      tick();
      lock.lock();
    }
  }
  lock.unlock();
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace vfiomm::sim
