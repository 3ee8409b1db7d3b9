// Named event counters, in the spirit of /proc/vmstat and Zircon's kcounters.
//
// A Counter is a name, declared once at file scope with VFIOMM_COUNTER and
// registered at static initialisation, like a vm_event_item; its value
// belongs to a kernel: every simulated kernel has its own CounterSet, which
// the threads running that kernel are bound to (KernelContext). Two kernels
// in one process therefore count apart.
//
// A CounterSet is sharded so that the fault path of many threads can bump a
// counter without bouncing one cache line: a thread always adds to "its"
// shard and a reader sums the shards. A shard has one writer at a time, as a
// per-CPU vm_event counter has (this_cpu_add() is a plain add): a thread
// claims a free shard at its first add and gives it back when it exits, so
// its adds are a load and a store, no locked instruction; one that finds
// none free adds atomically to the one shard kept shared. Snapshots are read
// by typed handle or by dotted name ("mm.fault.pte"); a name nobody
// registered is a bug, never a silent 0.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace vfiomm {

class Counter {
 public:
  // Registers the name; a name registered twice is a bug.
  Counter(std::string_view name, std::string_view description);
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds to the calling thread's kernel (CounterSet::current()).
  inline void add(uint64_t n = 1) const;

  unsigned index() const { return index_; }
  std::string_view name() const;
  std::string_view description() const;

  // The registered counter of that name, or nullptr.
  static const Counter* byName(std::string_view name);

 private:
  const unsigned index_;
};

// The values of every registered counter at one moment.
class CounterSnapshot {
 public:
  uint64_t get(const Counter& counter) const;
  // By name: a name no counter is registered under is a bug (it aborts),
  // so a typo in a test or a report cannot read as "nothing happened".
  uint64_t get(std::string_view name) const;
  // this - before, per name (counters only grow).
  CounterSnapshot since(const CounterSnapshot& before) const;
  const std::map<std::string, uint64_t, std::less<>>& values() const { return values_; }

 private:
  friend class CounterSet;
  std::map<std::string, uint64_t, std::less<>> values_;
};

// One kernel's counter values.
class CounterSet {
 public:
  static constexpr unsigned kMaxCounters = 128;
  static constexpr unsigned kShards = 8;
  // The last shard is never claimed: the threads that found none free.
  static constexpr unsigned kSharedShard = kShards - 1;

  CounterSet();
  CounterSet(const CounterSet&) = delete;
  CounterSet& operator=(const CounterSet&) = delete;

  void add(const Counter& counter, uint64_t n) {
    const unsigned shard = shardIndex();
    std::atomic<uint64_t>& value = shards_[shard].values[counter.index()];
    if (shard == kSharedShard) [[unlikely]]
      value.fetch_add(n, std::memory_order_relaxed);
    else  // this thread's alone
      value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t read(const Counter& counter) const;
  // The shard the calling thread adds to, claimed now if it has none (tests).
  static unsigned threadShard() { return shardIndex(); }
  CounterSnapshot snapshot() const;

  // The set the calling thread counts into; a thread that runs model code
  // without one bound is a bug (it aborts).
  static CounterSet& current() {
    if (tCurrent == nullptr) [[unlikely]]
      unbound();
    return *tCurrent;
  }
  // Binds `set` (may be null) to the calling thread; returns the previous.
  static CounterSet* bind(CounterSet* set);

 private:
  struct alignas(64) Shard {
    std::array<std::atomic<uint64_t>, kMaxCounters> values{};
  };
  // Inline, with the shard claimed at the thread's first add: every counter
  // bump of the fault path asks.
  static unsigned shardIndex() {
    if (tShard == kNoShard) [[unlikely]]
      return claimShard();
    return tShard;
  }
  static unsigned claimShard();
  [[noreturn]] static void unbound();

  static constexpr unsigned kNoShard = ~0u;
  static inline thread_local CounterSet* tCurrent = nullptr;
  static inline thread_local unsigned tShard = kNoShard;
  std::unique_ptr<Shard[]> shards_;
};

inline void Counter::add(uint64_t n) const { CounterSet::current().add(*this, n); }

}  // namespace vfiomm

// Declares a file-scope counter `var` registered as `name`.
#define VFIOMM_COUNTER(var, name, description) \
  [[maybe_unused]] static const ::vfiomm::Counter var { name, description }
