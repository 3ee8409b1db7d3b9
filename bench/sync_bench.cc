// The uncontended cost of the model's locks, with lockdep off (performance
// runs) and on (validation runs): the price every fault pays per lock.
#include <benchmark/benchmark.h>

#include "bound_context.h"  // tests/
#include "sync/lockdep.h"
#include "sync/mutex.h"
#include "sync/rw_semaphore.h"
#include "sync/spin_lock.h"

namespace vfiomm {
namespace {

const LockClass kBenchMutex{"&bench->mutex"};
const LockClass kBenchOuter{"&bench->outer"};
const LockClass kBenchSpin{"&bench->spin"};
const LockClass kBenchSem{"&bench->rwsem"};

// A kernel context of the benchmark's own, lockdep on or off as its
// argument says.
class LockdepSetting {
 public:
  explicit LockdepSetting(const benchmark::State& state) {
    lockdep::setEnabled(state.range(0) != 0);
  }
  LockdepSetting(const LockdepSetting&) = delete;
  LockdepSetting& operator=(const LockdepSetting&) = delete;

 private:
  testing::BoundContext boundContext_;  // constructed before the body above runs
};

void BM_MutexLockUnlock(benchmark::State& state) {
  const LockdepSetting setting(state);
  Mutex m(kBenchMutex);
  for (auto _ : state) {
    m.lock();
    m.unlock();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MutexLockUnlock)->ArgName("lockdep")->Arg(0)->Arg(1);

// With another lock held, lockdep checks the outer -> inner dependency on
// every acquisition; once known, that is a bitmap test, not a graph walk.
void BM_MutexLockUnlockUnderOuter(benchmark::State& state) {
  const LockdepSetting setting(state);
  Mutex outer(kBenchOuter);
  Mutex m(kBenchMutex);
  MutexGuard held(outer);
  for (auto _ : state) {
    m.lock();
    m.unlock();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MutexLockUnlockUnderOuter)->ArgName("lockdep")->Arg(0)->Arg(1);

void BM_SpinLockUnlock(benchmark::State& state) {
  const LockdepSetting setting(state);
  SpinLock l(kBenchSpin);
  for (auto _ : state) {
    l.lock();
    l.unlock();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpinLockUnlock)->ArgName("lockdep")->Arg(0)->Arg(1);

void BM_RwSemDownReadUpRead(benchmark::State& state) {
  const LockdepSetting setting(state);
  RwSemaphore s(kBenchSem);
  for (auto _ : state) {
    s.downRead();
    s.upRead();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RwSemDownReadUpRead)->ArgName("lockdep")->Arg(0)->Arg(1);

void BM_RwSemDownWriteUpWrite(benchmark::State& state) {
  const LockdepSetting setting(state);
  RwSemaphore s(kBenchSem);
  for (auto _ : state) {
    s.downWrite();
    s.upWrite();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RwSemDownWriteUpWrite)->ArgName("lockdep")->Arg(0)->Arg(1);

}  // namespace
}  // namespace vfiomm
