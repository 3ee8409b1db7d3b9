#include "base/counter.h"

#include <atomic>
#include <string>
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

namespace {

// Bit s: shard s is some live thread's. The shared shard is never claimed.
std::atomic<uint32_t> claimedShards{0};
static_assert(CounterSet::kShards <= 32);

// The calling thread's claim, given back when the thread exits. Adds that
// come later still (another thread_local's destructor) go to the shared
// shard: the claimed one may already be another thread's.
struct ShardClaim {
  unsigned shard = CounterSet::kSharedShard;
  unsigned* threadShard = nullptr;  // the thread's CounterSet::tShard
  ~ShardClaim() {
    if (shard == CounterSet::kSharedShard) return;
    *threadShard = CounterSet::kSharedShard;
    // Release: the next owner's first load sees this thread's last store.
    claimedShards.fetch_and(~(uint32_t{1} << shard), std::memory_order_release);
  }
};

thread_local ShardClaim shardClaim;

}  // namespace

unsigned CounterSet::claimShard() {
  uint32_t claimed = claimedShards.load(std::memory_order_relaxed);
  unsigned shard = kSharedShard;
  for (;;) {
    const uint32_t free = ~claimed & ((uint32_t{1} << kSharedShard) - 1);
    if (free == 0) break;
    const unsigned s = static_cast<unsigned>(__builtin_ctz(free));
    // Acquire: the previous owner's stores to the shard happen before ours.
    if (claimedShards.compare_exchange_weak(claimed, claimed | (uint32_t{1} << s),
                                            std::memory_order_acquire, std::memory_order_relaxed)) {
      shard = s;
      break;
    }
  }
  shardClaim.shard = shard;
  shardClaim.threadShard = &tShard;
  tShard = shard;
  return shard;
}

}  // namespace vfiomm
