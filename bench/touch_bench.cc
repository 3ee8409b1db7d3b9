// What a user waits for: one vCPU touching every 4 KiB page of a large BAR
// in the address-space design, run as `vfiomm run` runs a scenario (lockdep
// on, the invariant monitor watching). 128 GiB is 33.5 M faults, inserts
// and TLB fills. Results and the command: docs/PERFORMANCE.md.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "sim/runner.h"
#include "sim/scenario.h"

namespace vfiomm {
namespace {

sim::Scenario touchScenario(uint64_t gib) {
  return sim::parseScenario(fmt::format(R"yaml(
name: touch-{0}g
cpus: 2
devices:
  - name: gpu
    bus: 1
    bars:
      - {{index: 0, size: {0}G, type: mem64, prefetchable: true}}
processes:
  - name: vmm
    open: [gpu]
    mappings:
      - {{name: vram, device: gpu, bar: 0, align: natural}}
phases:
  - name: touch
    threads:
      - {{name: vcpu0, process: vmm, cpu: 0, pattern: sequential, stride: 4K}}
)yaml",
                                        gib),
                            "touch.yaml");
}

// Arg: the BAR's size in GiB.
void BM_TouchBar4K(benchmark::State& state) {
  const sim::Scenario sc = touchScenario(static_cast<uint64_t>(state.range(0)));
  uint64_t faults = 0;
  for (auto _ : state) {
    const sim::DesignResult r = sim::runScenario(sc, DesignKind::kAddressSpace);
    faults = r.total.faults;
  }
  state.counters["faults"] = static_cast<double>(faults);
  state.SetItemsProcessed(static_cast<int64_t>(faults) * state.iterations());
}
BENCHMARK(BM_TouchBar4K)
    ->Arg(1)
    ->Arg(128)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace vfiomm
