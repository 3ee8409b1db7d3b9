// Named event counters, in the spirit of /proc/vmstat and Zircon's kcounters.
//
// A Counter is sharded so that the fault path of many threads can bump it
// without bouncing one cache line: a thread always adds to "its" shard and a
// reader sums the shards. Counters declared with VFIOMM_COUNTER are
// registered by their dotted name ("mm.fault.pte") and can be read together
// as a CounterSnapshot; tests and the simulator compare two snapshots.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace vfiomm {

class Counter {
 public:
  static constexpr unsigned kShards = 8;

  constexpr Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void add(uint64_t n = 1) { shards_[shardIndex()].value.fetch_add(n, std::memory_order_relaxed); }
  uint64_t read() const;

 private:
  struct alignas(64) Shard {
    std::atomic<uint64_t> value{0};
  };
  static unsigned shardIndex();

  std::array<Shard, kShards> shards_{};
};

// The values of every registered counter at one moment.
class CounterSnapshot {
 public:
  uint64_t get(std::string_view name) const;
  // this - before, per name (counters only grow).
  CounterSnapshot since(const CounterSnapshot& before) const;
  const std::map<std::string, uint64_t, std::less<>>& values() const { return values_; }
  void set(std::string name, uint64_t v) { values_[std::move(name)] = v; }

 private:
  std::map<std::string, uint64_t, std::less<>> values_;
};

class CounterRegistry {
 public:
  static CounterRegistry& global();

  // The name must be unique; registering twice is a bug.
  void add(std::string_view name, std::string_view description, const Counter* counter);
  CounterSnapshot snapshot() const;
  std::string description(std::string_view name) const;

 private:
  struct Entry {
    std::string name;
    std::string description;
    const Counter* counter;
  };
  mutable std::mutex mu_;  // registry bookkeeping only; never held by the model
  std::vector<Entry> entries_;
};

namespace detail {
struct CounterRegistrar {
  CounterRegistrar(std::string_view name, std::string_view description, const Counter* c) {
    CounterRegistry::global().add(name, description, c);
  }
};
}  // namespace detail

}  // namespace vfiomm

// Declares a file-scope counter `var` registered as `name`.
#define VFIOMM_COUNTER(var, name, description)                                  \
  ::vfiomm::Counter var;                                                        \
  [[maybe_unused]] static const ::vfiomm::detail::CounterRegistrar var##_registrar{ \
      name, description, &var}
