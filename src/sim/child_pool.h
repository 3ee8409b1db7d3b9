// runInChildren: run independent pieces of work each in a forked child
// process, up to `jobs` at once, and collect what each returns.
//
// The model's counters are process-wide, so two measurements can never run
// in one process at the same time; a child per measurement keeps them apart
// and lets a 2-core machine run two at once. The caller must have no
// threads of its own when it calls this (fork copies only the caller).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace vfiomm::sim {

// work(i) runs in a child for every i in [0, n), in increasing i as slots
// free up; its string comes back through a pipe. `started(i)` runs in the
// parent just before child i starts; `tick()` at least every kTick while
// children run (both for progress output). A child whose work throws prints
// the message; the parent then throws ScenarioError if it was one or an
// OutputError (bad input stays bad input, exit status 2), else std::runtime_error naming the
// index, as when a child dies. Children still running when it throws are
// killed and reaped; a SIGINT/SIGTERM to the parent kills and reaps them too
// (sim/interrupt.h). At most KillOnInterrupt::kSlots run at once.
inline constexpr int kTickMilliseconds = 100;
std::vector<std::string> runInChildren(size_t n, unsigned jobs,
                                       const std::function<std::string(size_t)>& work,
                                       const std::function<void(size_t)>& started = {},
                                       const std::function<void()>& tick = {});

}  // namespace vfiomm::sim
