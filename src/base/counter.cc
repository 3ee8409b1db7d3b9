#include "base/counter.h"

#include "base/assert.h"

namespace vfiomm {

uint64_t Counter::read() const {
  uint64_t sum = 0;
  for (const Shard& s : shards_) sum += s.value.load(std::memory_order_relaxed);
  return sum;
}

unsigned Counter::shardIndex() {
  static std::atomic<unsigned> next{0};
  thread_local const unsigned index = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return index;
}

uint64_t CounterSnapshot::get(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? 0 : it->second;
}

CounterSnapshot CounterSnapshot::since(const CounterSnapshot& before) const {
  CounterSnapshot d;
  for (const auto& [name, v] : values_) d.values_[name] = v - before.get(name);
  return d;
}

CounterRegistry& CounterRegistry::global() {
  static CounterRegistry registry;
  return registry;
}

void CounterRegistry::add(std::string_view name, std::string_view description,
                          const Counter* counter) {
  std::lock_guard lock(mu_);
  for (const Entry& e : entries_) VFIOMM_ASSERT_MSG(e.name != name, "counter registered twice");
  entries_.push_back(Entry{std::string(name), std::string(description), counter});
}

CounterSnapshot CounterRegistry::snapshot() const {
  std::lock_guard lock(mu_);
  CounterSnapshot s;
  for (const Entry& e : entries_) s.set(e.name, e.counter->read());
  return s;
}

std::string CounterRegistry::description(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const Entry& e : entries_)
    if (e.name == name) return e.description;
  return {};
}

}  // namespace vfiomm
