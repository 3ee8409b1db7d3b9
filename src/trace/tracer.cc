#include "trace/tracer.h"

#include <algorithm>

#include "base/assert.h"

namespace vfiomm::trace {

namespace {

thread_local std::pair<int, int> tCurrentTask{0, 0};
thread_local uint64_t tCurrentFlow = 0;
std::atomic<CpuResolver> gCpuResolver{nullptr};

// A logical clock's reading is a microsecond: the trace viewers show
// microseconds, and one event per reading stays readable.
constexpr uint64_t kLogicalTickNs = 1000;

}  // namespace

Tracer& Tracer::current() {
  VFIOMM_ASSERT_MSG(detail::tTracer != nullptr,
                    "model code ran on a thread bound to no kernel (KernelContext::Scope)");
  return *detail::tTracer;
}

Tracer* Tracer::bind(Tracer* tracer) {
  Tracer* previous = detail::tTracer;
  detail::tTracer = tracer;
  return previous;
}

void Tracer::start(size_t limit, std::string title, unsigned cpus, Clock clock) {
  VFIOMM_ASSERT_MSG(limit >= 1, "a trace buffer holds at least one event");
  std::lock_guard guard(mu_);
  limit_ = limit;
  head_ = 0;
  recorded_ = 0;
  ring_.clear();
  ring_.shrink_to_fit();
  names_ = TraceLog{};
  names_.title = std::move(title);
  names_.cpus = cpus;
  clock_ = clock;
  t0_ = std::chrono::steady_clock::now();
  ticks_.store(0, std::memory_order_relaxed);
  on_.store(true, std::memory_order_release);
}

TraceLog Tracer::stop() {
  on_.store(false, std::memory_order_release);
  std::lock_guard guard(mu_);
  TraceLog log = std::move(names_);
  names_ = TraceLog{};
  log.limit = limit_;
  log.recorded = recorded_;
  log.dropped = recorded_ - ring_.size();
  log.events.reserve(ring_.size());
  // Oldest first, then by start time: spans are recorded when they end.
  log.events.insert(log.events.end(), ring_.begin() + static_cast<std::ptrdiff_t>(head_),
                    ring_.end());
  log.events.insert(log.events.end(), ring_.begin(),
                    ring_.begin() + static_cast<std::ptrdiff_t>(head_));
  std::stable_sort(log.events.begin(), log.events.end(),
                   [](const TraceEvent& a, const TraceEvent& b) { return a.ts < b.ts; });
  ring_.clear();
  ring_.shrink_to_fit();
  head_ = 0;
  recorded_ = 0;
  return log;
}

uint64_t Tracer::recorded() {
  std::lock_guard guard(mu_);
  return recorded_;
}

uint64_t Tracer::now() const {
  if (clock_ == Clock::kLogical)
    return (ticks_.fetch_add(1, std::memory_order_relaxed) + 1) * kLogicalTickNs;
  const auto d = std::chrono::steady_clock::now() - t0_;
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

void Tracer::record(TraceEvent e) {
  std::tie(e.pid, e.tid) = tCurrentTask;
  if (e.cpu == kCurrentCpu) {
    const CpuResolver resolve = gCpuResolver.load(std::memory_order_relaxed);
    e.cpu = static_cast<int16_t>(resolve != nullptr ? resolve() : kNoCpu);
  }
  std::lock_guard guard(mu_);
  ++recorded_;
  if (ring_.size() < limit_) {
    ring_.push_back(e);
    return;
  }
  ring_[head_] = e;
  head_ = (head_ + 1) % limit_;
}

std::string_view Tracer::intern(std::string_view s) {
  std::lock_guard guard(mu_);
  return names_.intern(s);
}

void Tracer::nameProcess(int pid, std::string name) {
  std::lock_guard guard(mu_);
  names_.processNames[pid] = std::move(name);
}

void Tracer::nameThread(int pid, int tid, std::string name) {
  std::lock_guard guard(mu_);
  names_.threadNames[{pid, tid}] = std::move(name);
}

void setCurrentTask(int pid, int tid) { tCurrentTask = {pid, tid}; }

std::pair<int, int> currentTask() { return tCurrentTask; }

void setCpuResolver(CpuResolver resolver) {
  gCpuResolver.store(resolver, std::memory_order_relaxed);
}

uint64_t currentFlow() { return tCurrentFlow; }

FlowScope::FlowScope(uint64_t flow) : previous_(tCurrentFlow) { tCurrentFlow = flow; }

FlowScope::~FlowScope() { tCurrentFlow = previous_; }

}  // namespace vfiomm::trace
