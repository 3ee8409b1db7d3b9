#include <benchmark/benchmark.h>

#include "base/counter.h"

namespace vfiomm {
namespace {

VFIOMM_COUNTER(benchEvents, "bench.counter.events", "events counted by BM_CounterAdd");

// The cost the fault path pays for each counter it bumps.
void BM_CounterAdd(benchmark::State& state) {
  static CounterSet set;  // one kernel's counters, shared by the benchmark's threads
  CounterSet* const previous = CounterSet::bind(&set);
  for (auto _ : state) benchEvents.add();
  CounterSet::bind(previous);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterAdd)->ThreadRange(1, 2);

}  // namespace
}  // namespace vfiomm
