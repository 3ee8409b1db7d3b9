// What the pci tests share: counter reads, config-space helpers, and a
// scheduling hook that runs a test's code at one named point of the model
// (inside a reset, while decode is off) — deterministic, no sleeps.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "base/counter.h"
#include "pci/pci_device.h"
#include "sync/sched_hook.h"

namespace vfiomm {

inline uint64_t counter(const char* name) { return CounterSet::current().snapshot().get(name); }

inline uint32_t cfgRead(const PciDevice& dev, uint32_t offset, unsigned size) {
  const Result<uint32_t> r = dev.configRead(offset, size);
  EXPECT_TRUE(r.has_value()) << "config read at " << offset;
  return r.value_or(0);
}

inline void cfgWrite(PciDevice& dev, uint32_t offset, unsigned size, uint32_t value) {
  EXPECT_TRUE(dev.configWrite(offset, size, value).has_value()) << "config write at " << offset;
}

// Installed for its lifetime: runs `action` each time model code passes
// schedPoint(point), on the thread that passes it.
class SchedPointAction : public SchedHook {
 public:
  SchedPointAction(std::string_view point, std::function<void()> action)
      : point_(point), action_(std::move(action)), previous_(setSchedHook(this)) {}
  ~SchedPointAction() override { setSchedHook(previous_); }
  SchedPointAction(const SchedPointAction&) = delete;
  SchedPointAction& operator=(const SchedPointAction&) = delete;

  void schedPoint(std::string_view what) override {
    if (what != point_) return;
    ++runs;
    action_();
  }

  int runs = 0;

 private:
  std::string point_;
  std::function<void()> action_;
  SchedHook* previous_;
};

}  // namespace vfiomm
