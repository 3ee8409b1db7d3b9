#include "base/counter.h"

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/assert.h"

namespace vfiomm {
namespace {

struct Registration {
  std::string name;
  std::string description;
  const Counter* counter;
};

// The names, filled during static initialisation (one thread) and only
// read afterwards, like the kernel's vmstat_text.
std::vector<Registration>& registry() {
  static std::vector<Registration> names;
  return names;
}

}  // namespace

Counter::Counter(std::string_view name, std::string_view description)
    : index_(static_cast<unsigned>(registry().size())) {
  VFIOMM_ASSERT_MSG(byName(name) == nullptr, "counter registered twice");
  VFIOMM_ASSERT_MSG(index_ < CounterSet::kMaxCounters, "raise CounterSet::kMaxCounters");
  registry().push_back(Registration{std::string(name), std::string(description), this});
}

std::string_view Counter::name() const { return registry()[index_].name; }
std::string_view Counter::description() const { return registry()[index_].description; }

const Counter* Counter::byName(std::string_view name) {
  for (const Registration& r : registry())
    if (r.name == name) return r.counter;
  return nullptr;
}

uint64_t CounterSnapshot::get(const Counter& counter) const { return get(counter.name()); }

uint64_t CounterSnapshot::get(std::string_view name) const {
  auto it = values_.find(name);
  VFIOMM_ASSERT_MSG(it != values_.end(), "no counter is registered under this name");
  return it->second;
}

CounterSnapshot CounterSnapshot::since(const CounterSnapshot& before) const {
  CounterSnapshot d;
  for (const auto& [name, v] : values_) d.values_[name] = v - before.get(name);
  return d;
}

CounterSet::CounterSet() : shards_(std::make_unique<Shard[]>(kShards)) {}

uint64_t CounterSet::read(const Counter& counter) const {
  uint64_t sum = 0;
  for (unsigned s = 0; s < kShards; ++s)
    sum += shards_[s].values[counter.index()].load(std::memory_order_relaxed);
  return sum;
}

CounterSnapshot CounterSet::snapshot() const {
  CounterSnapshot s;
  for (const Registration& r : registry()) s.values_[r.name] = read(*r.counter);
  return s;
}

void CounterSet::unbound() {
  assertFailed("CounterSet::current() != nullptr",
               "model code ran on a thread bound to no kernel (KernelContext::Scope)",
               SourceLocation::current());
}

CounterSet* CounterSet::bind(CounterSet* set) {
  CounterSet* previous = tCurrent;
  tCurrent = set;
  return previous;
}

// The thread's pthread handle is the address of its descriptor, and
// threads' descriptors lie a stack apart; bits above the page offset
// spread consecutive threads over the shards.
unsigned CounterSet::pickShard() {
  tShard = static_cast<unsigned>(std::hash<std::thread::id>{}(std::this_thread::get_id()) >> 12) %
           kShards;
  return tShard;
}

}  // namespace vfiomm
