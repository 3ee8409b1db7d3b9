// What a kernel costs to build and tear down: `vfiomm check` builds one per
// schedule it explores, compare and sweep one per design and probe.
#include <benchmark/benchmark.h>

#include "kernel/kernel.h"
#include "uapi/process.h"

namespace vfiomm {
namespace {

// The bare kernel: its context (counters, tracer, lockdep), machine (4 CPUs
// with their TLBs), PCI host and IOMMU.
void BM_KernelCreateDestroy(benchmark::State& state) {
  for (auto _ : state) {
    auto kernel = Kernel::create(KernelConfig{});
    benchmark::DoNotOptimize(kernel);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KernelCreateDestroy);

// A kernel as a small check run builds it: the standard device bound to
// vfio-pci, and a process that spawns and exits.
void BM_KernelWithDeviceCreateDestroy(benchmark::State& state) {
  for (auto _ : state) {
    auto kernel = Kernel::create(KernelConfig{});
    (*kernel)->addStandardDevice();
    Process::spawn(**kernel, "vmm")->exit();
    benchmark::DoNotOptimize(kernel);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KernelWithDeviceCreateDestroy);

}  // namespace
}  // namespace vfiomm
