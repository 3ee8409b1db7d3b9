#include "check/scheduler.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <utility>

#include "base/assert.h"
#include "sync/lock_class.h"
#include "sync/lockdep.h"

namespace vfiomm::check {

namespace {

// Which scheduler the calling thread belongs to, and its id there. A hook
// call from any other thread (none should run model code while a check
// runs) takes the default path.
thread_local Scheduler* tlsScheduler = nullptr;
thread_local unsigned tlsId = 0;

// How long a parked thread polls before it sleeps (about a microsecond).
constexpr unsigned kParkSpins = 256;

void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

std::vector<std::string> heldLockNames() {
  std::vector<std::string> out;
  if (!lockdep::enabled()) return out;
  for (const lockdep::HeldLock& h : lockdep::heldLocks())
    out.emplace_back(h.cls != nullptr ? h.cls->name() : "?");
  return out;
}

}  // namespace

Scheduler::Scheduler(Strategy& strategy, uint64_t maxPoints)
    : strategy_(strategy), maxPoints_(maxPoints) {}

void Scheduler::start() {
  const unsigned id = spawn();
  tlsScheduler = this;
  tlsId = id;
  current_.store(id, std::memory_order_release);
}

bool Scheduler::mine() const {
  return tlsScheduler == this && current_.load(std::memory_order_relaxed) != kAbandoned;
}

void Scheduler::beforeAcquire(const void* lock) {
  if (!mine()) return SchedHook::beforeAcquire(lock);
  note(Point::kAcquire, lock, {});
  reschedule();
}

void Scheduler::wait(const void* lock, const std::atomic<uint32_t>& word, uint32_t observed) {
  if (!mine()) return SchedHook::wait(lock, word, observed);
  ThreadState& t = threads_[tlsId];
  t.state = State::kWaiting;
  t.woken = false;
  t.word = &word;
  t.observed = observed;
  t.held = heldLockNames();
  note(Point::kWait, lock, {});
  reschedule();
}

// Everyone waiting on the word may now get in, whatever the word holds by
// the time they run (the rwsem counts such wake-ups for its handoff).
void Scheduler::afterRelease(const void* lock, std::atomic<uint32_t>& word, bool waiters) {
  if (!mine()) return SchedHook::afterRelease(lock, word, waiters);
  for (ThreadState& t : threads_)
    if (t.state == State::kWaiting && t.word == &word) t.woken = true;
  note(Point::kRelease, lock, {});
  reschedule();
}

void Scheduler::schedPoint(std::string_view what) {
  if (!mine()) return SchedHook::schedPoint(what);
  note(Point::kNamed, nullptr, what);
  reschedule();
}

void Scheduler::spinPoint(std::string_view what) {
  if (!mine()) return SchedHook::spinPoint(what);
  note(Point::kNamed, nullptr, what);
  reschedule(true);
}

void Scheduler::beginWaitLoop() {
  if (mine()) threads_[tlsId].inWaitLoop = true;
}

void Scheduler::endWaitLoop() {
  if (mine()) threads_[tlsId].inWaitLoop = false;
}

unsigned Scheduler::spawn() {
  const auto id = static_cast<unsigned>(threads_.size());
  threads_.emplace_back();
  strategy_.threadSpawned(id);
  return id;
}

void Scheduler::attach(unsigned id) {
  tlsScheduler = this;
  tlsId = id;
  parkUntilRunning(id);
}

void Scheduler::detach() {
  if (!mine()) return;
  threads_[tlsId].state = State::kDone;
  tlsScheduler = nullptr;
  bool live = false;
  for (const ThreadState& t : threads_) live = live || t.state != State::kDone;
  if (!live) return;
  const std::vector<unsigned> cands = candidates();
  if (cands.empty()) giveUp(deadlockReport());
  handOver(choose(cands));
}

void Scheduler::note(Point point, const void* lock, std::string_view name) {
  ThreadState& t = threads_[tlsId];
  t.point = point;
  t.lock = lock;
  t.name = name;
}

// The calling thread passes a scheduling point. Anywhere but in a spin or
// wait loop it made progress, so the spinners may look again.
void Scheduler::reschedule(bool spinPointHere) {
  if (++points_ > maxPoints_)
    giveUp(fmt::format("livelock: no end after {} scheduling points", maxPoints_));
  const unsigned me = tlsId;
  const bool spinning = spinPointHere || threads_[me].inWaitLoop;
  if (!spinning)
    for (ThreadState& t : threads_) t.spinning = false;
  threads_[me].spinning = spinning;
  const std::vector<unsigned> cands = candidates();
  if (cands.empty()) giveUp(deadlockReport());
  const unsigned next = choose(cands);
  if (next != me) {
    handOver(next);
    parkUntilRunning(me);
  }
  ThreadState& t = threads_[me];
  t.state = State::kRunnable;
  t.word = nullptr;
  t.held.clear();
}

bool Scheduler::runnable(const ThreadState& t) const {
  switch (t.state) {
    case State::kRunnable: return true;
    case State::kWaiting: return t.woken || t.word->load(std::memory_order_relaxed) != t.observed;
    case State::kDone: return false;
  }
  return false;
}

// The runnable threads that do not spin, or, when all of them spin, the
// one that waited longest for the CPU: spinners take turns, since each may
// be what another spins for (a strategy's pick could starve one for ever).
std::vector<unsigned> Scheduler::candidates() const {
  std::vector<unsigned> out;
  unsigned spinner = kNobody;
  for (unsigned i = 0; i < threads_.size(); ++i) {
    const ThreadState& t = threads_[i];
    if (!runnable(t)) continue;
    if (!t.spinning)
      out.push_back(i);
    else if (spinner == kNobody || t.lastPicked < threads_[spinner].lastPicked)
      spinner = i;
  }
  if (out.empty() && spinner != kNobody) out.push_back(spinner);
  return out;
}

unsigned Scheduler::choose(const std::vector<unsigned>& cands) {
  unsigned next = cands.front();
  if (cands.size() > 1) {
    next = strategy_.pick(cands, tlsId);
    const unsigned byDefault = defaultPick(cands, tlsId);
    choices_.push_back(next);
    defaults_.push_back(byDefault);
    if (next != byDefault && byDefault == tlsId) ++preemptions_;
  }
  threads_[next].lastPicked = points_;
  return next;
}

void Scheduler::handOver(unsigned next) {
  current_.store(next, std::memory_order_release);
  current_.notify_all();
}

// A short spin first: a hand-over back and forth is the common case, and a
// futex sleep and wake-up costs far more than it.
void Scheduler::parkUntilRunning(unsigned me) const {
  for (unsigned spins = 0;; ++spins) {
    const unsigned c = current_.load(std::memory_order_acquire);
    if (c == me) return;
    if (c == kAbandoned) throw Abandoned{};
    if (spins < kParkSpins)
      cpuRelax();
    else
      current_.wait(c, std::memory_order_acquire);
  }
}

void Scheduler::giveUp(std::string report) {
  stuck_ = std::move(report);
  if (onStuck_) onStuck_(stuck_);
  handOver(kAbandoned);
  throw Abandoned{};
}

std::string Scheduler::deadlockReport() const {
  std::string out = "deadlock: every live thread is blocked";
  for (unsigned i = 0; i < threads_.size(); ++i)
    if (threads_[i].state != State::kDone) out += "\n  " + describe(i);
  return out;
}

std::string Scheduler::describe(unsigned id) const {
  const ThreadState& t = threads_[id];
  std::string out;
  switch (t.point) {
    case Point::kStart: out = fmt::format("thread {}: not started", id); break;
    case Point::kAcquire: out = fmt::format("thread {}: acquiring lock {}", id, t.lock); break;
    case Point::kWait:
      out = fmt::format("thread {}: waits on lock {} (word {:#x}, saw {:#x})", id, t.lock,
                        t.word->load(std::memory_order_relaxed), t.observed);
      break;
    case Point::kRelease: out = fmt::format("thread {}: released lock {}", id, t.lock); break;
    case Point::kNamed: out = fmt::format("thread {}: at {}", id, t.name); break;
  }
  if (!t.held.empty()) out += fmt::format(", holding {}", fmt::join(t.held, ", "));
  return out;
}

}  // namespace vfiomm::check
