// Test helpers that line threads up at the model's lock operations, for the
// race tests of several files (tests/vfio).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "sync/sched_hook.h"

namespace vfiomm::testing {

// Lines threads up at the model's lock operations (sync/sched_hook.h). A
// rule fires when the thread playing `role` reaches its `nth` `event` on
// `lock` (nullptr: any lock); its action runs on that thread, inside the
// lock operation.
class LineUp : public SchedHook {
 public:
  enum class Event { kBeforeAcquire, kWait, kAfterRelease };
  static inline thread_local int role = 0;  // 0: the test's main thread

  struct Rule {
    int role = 0;
    Event event = Event::kBeforeAcquire;
    const void* lock = nullptr;
    int nth = 1;  // 0: only count
    std::function<void()> action;
    std::atomic<int> seen{0};
  };

  // Register every rule before the hook is installed.
  Rule& on(int r, Event ev, const void* lock, int nth = 1, std::function<void()> action = {}) {
    auto rule = std::make_unique<Rule>();
    rule->role = r;
    rule->event = ev;
    rule->lock = lock;
    rule->nth = nth;
    rule->action = std::move(action);
    rules_.push_back(std::move(rule));
    return *rules_.back();
  }

  void beforeAcquire(const void* lock) override { fire(Event::kBeforeAcquire, lock); }
  void wait(const void* lock, const std::atomic<uint32_t>& word, uint32_t observed) override {
    fire(Event::kWait, lock);
    SchedHook::wait(lock, word, observed);
  }
  void afterRelease(const void* lock, std::atomic<uint32_t>& word, bool waiters) override {
    SchedHook::afterRelease(lock, word, waiters);
    fire(Event::kAfterRelease, lock);
  }

 private:
  void fire(Event ev, const void* lock) {
    for (auto& r : rules_) {
      if (r->role != role || r->event != ev || (r->lock != nullptr && r->lock != lock)) continue;
      const int n = r->seen.fetch_add(1) + 1;
      if (n == r->nth && r->action) r->action();
    }
  }

  std::vector<std::unique_ptr<Rule>> rules_;
};

class InstalledHook {
 public:
  explicit InstalledHook(SchedHook& hook) : previous_(setSchedHook(&hook)) {}
  ~InstalledHook() { setSchedHook(previous_); }
  InstalledHook(const InstalledHook&) = delete;
  InstalledHook& operator=(const InstalledHook&) = delete;

 private:
  SchedHook* previous_;
};

}  // namespace vfiomm::testing
