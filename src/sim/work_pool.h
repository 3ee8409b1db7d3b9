// runConcurrently: run independent pieces of work on up to `jobs` threads of
// this process, and wait for all of them.
//
// Each piece builds and runs kernels of its own; a Kernel's context keeps
// its counters, lockdep and tracer apart from every other kernel's
// (KernelContext), so `compare`, `sweep` and `explain` run their designs and
// probes side by side in one process and hand results over as values.
#pragma once

#include <cstddef>
#include <functional>

namespace vfiomm::sim {

// work(i) runs for every i in [0, n), on a thread of its own, in increasing
// i as threads free up. `started(i)` runs on the calling thread just before
// work i starts, `tick()` on the calling thread at least every
// kTickMilliseconds while work runs (both for progress output). When a
// piece of work throws, no more pieces start; once the running ones have
// finished, the exception of the lowest index is rethrown as it was
// (a ScenarioError stays bad input).
inline constexpr int kTickMilliseconds = 100;
void runConcurrently(size_t n, unsigned jobs, const std::function<void(size_t)>& work,
                     const std::function<void(size_t)>& started = {},
                     const std::function<void()>& tick = {});

}  // namespace vfiomm::sim
