#include "sync/lockdep.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "base/assert.h"
#include "sync/lockdep_state.h"
#include "sync/sync_context.h"
#include "trace/tracer.h"

namespace vfiomm::lockdep {
namespace {

using Loc = SourceLocation;

constexpr uint32_t kNoNode = ~uint32_t{0};

State& state() { return SyncContext::current().lockdep(); }

uint32_t nodeOf(const LockClass& cls, unsigned subclass) {
  return cls.id() * LockClass::kMaxSubclasses + subclass;
}
uint32_t nodeOf(const HeldLock& h) { return nodeOf(*h.cls, h.subclass); }

// --- the calling thread -------------------------------------------------------

struct Task {
  std::string comm = "thread";
  int pid = static_cast<int>(::gettid());  // until the thread says who it is
  int cpu = -1;
  std::vector<HeldLock> held;  // oldest first, as lockdep's curr->held_locks
};

Task& current() {
  thread_local Task task;
  return task;
}

// The newest entry for `lock`: a lock is released from the top down.
std::vector<HeldLock>::iterator findHeld(Task& t, const void* lock) {
  auto rit = std::find_if(t.held.rbegin(), t.held.rend(),
                          [lock](const HeldLock& h) { return h.lock == lock; });
  return rit == t.held.rend() ? t.held.end() : std::prev(rit.base());
}

// --- class usage, for the {+.+.} of a splat ----------------------------------

constexpr uint8_t kUsedWrite = 1;
constexpr uint8_t kUsedRead = 2;

void markUsed(State& s, uint32_t node, Mode mode) {
  const uint8_t bit = mode == Mode::kShared ? kUsedRead : kUsedWrite;
  std::atomic<uint8_t>& usage = s.usage[node];
  if ((usage.load(std::memory_order_relaxed) & bit) == 0)
    usage.fetch_or(bit, std::memory_order_relaxed);
}

// Linux prints the hardirq then the softirq state, each for write and read;
// the model takes every lock in process context with interrupts on, which
// Linux shows as '+' for the modes the class was used in.
std::string usageString(uint32_t node) {
  const uint8_t u = state().usage[node].load(std::memory_order_relaxed);
  const char w = (u & kUsedWrite) != 0 ? '+' : '.';
  const char r = (u & kUsedRead) != 0 ? '+' : '.';
  return {'{', w, r, w, r, '}'};
}

// --- formatting ----------------------------------------------------------------

std::string_view baseName(const char* path) {
  const std::string_view p(path);
  const size_t slash = p.rfind('/');
  return slash == std::string_view::npos ? p : p.substr(slash + 1);
}

std::string at(const Loc& where) {
  return fmt::format("{}:{}", baseName(where.file_name()), where.line());
}

std::string lockName(const LockClass& cls, unsigned subclass) {
  return subclass == 0 ? std::string(cls.name()) : fmt::format("{}/{}", cls.name(), subclass);
}
std::string lockName(const HeldLock& h) { return lockName(*h.cls, h.subclass); }

// " (&mm->mmap_lock){++++}, at: fault.cc:120"
std::string describe(const HeldLock& h) {
  return fmt::format("({}){}, at: {}", lockName(h), usageString(nodeOf(h)), at(h.where));
}

std::string who(const Task& t) { return fmt::format("{}/{}", t.comm, t.pid); }

std::string heldList(const Task& t) {
  if (t.held.empty()) return fmt::format("no locks held by {}.\n", who(t));
  std::string s =
      fmt::format("{} lock{} held by {}:\n", t.held.size(), t.held.size() == 1 ? "" : "s", who(t));
  for (size_t i = 0; i < t.held.size(); ++i) s += fmt::format(" #{}: {}\n", i, describe(t.held[i]));
  return s;
}

std::string banner(std::string_view title) {
  return fmt::format("{0:=<{2}}\n{1}\n{0:-<{2}}\n", "", title, title.size());
}

// --- the report log -------------------------------------------------------------

ReportLog& reportLog() { return state().log; }

// Every report, printed or not, is an instant of the trace.
void traceReport(ReportKind kind, std::string_view lockClass) {
  trace::Tracer& t = trace::Tracer::current();
  trace::TraceEvent e;
  e.kind = trace::EventKind::kLockdepReport;
  e.ts = t.now();
  e.name = reportKindName(kind);
  e.detail = t.intern(lockClass);
  t.record(e);
}

// Counts a report and, only when it will be kept or printed, builds its text;
// the sink runs outside the log's mutex so that it may call back into lockdep.
template <typename BuildText>
void record(ReportKind kind, std::string_view lockClass, bool oncePerSite, const Loc& site,
            BuildText&& buildText) {
  if (trace::enabled()) [[unlikely]]
    traceReport(kind, lockClass);
  ReportLog& log = reportLog();
  Report report;
  std::function<void(const Report&)> sink;
  {
    std::lock_guard guard(log.mu);
    ++log.counts[static_cast<size_t>(kind)];
    const bool print =
        !oncePerSite || log.printedSites.emplace(kind, site.file_name(), site.line()).second;
    const bool keep = log.kept.size() < kMaxKeptReports;
    if (!print && !keep) return;
    report = Report{kind, std::string(lockClass), std::forward<BuildText>(buildText)()};
    if (keep) log.kept.push_back(report);
    if (print) sink = log.sink;
  }
  if (sink) sink(report);
}

// --- the dependency graph ---------------------------------------------------------

Graph& graph() { return state().graph; }

bool edgeKnown(const Graph& g, uint32_t from, uint32_t to) {
  const EdgeRow* row = g.rows[from].load(std::memory_order_acquire);
  return row != nullptr &&
         (row->bits[to / 64].load(std::memory_order_relaxed) & (uint64_t{1} << (to % 64))) != 0;
}

// Under g.mu, once the edge is in g.out.
void setEdgeKnown(Graph& g, uint32_t from, uint32_t to) {
  EdgeRow* row = g.rows[from].load(std::memory_order_relaxed);
  if (row == nullptr) {
    row = g.rowStore.emplace_back(std::make_unique<EdgeRow>()).get();
    g.rows[from].store(row, std::memory_order_release);
  }
  row->bits[to / 64].fetch_or(uint64_t{1} << (to % 64), std::memory_order_relaxed);
}

const std::vector<Edge>& edgesFrom(const Graph& g, uint32_t from) {
  static const std::vector<Edge> kNone;
  auto it = g.out.find(from);
  return it == g.out.end() ? kNone : it->second;
}

const Edge& findEdge(const Graph& g, uint32_t from, uint32_t to) {
  const auto& edges = edgesFrom(g, from);
  auto it = std::find_if(edges.begin(), edges.end(), [to](const Edge& e) { return e.to == to; });
  VFIOMM_ASSERT(it != edges.end());
  return *it;
}

std::string nodeName(const Graph& g, uint32_t node) {
  return lockName(*g.classOf.at(node), node % LockClass::kMaxSubclasses);
}

// Breadth first, so the reported chain is a shortest one. Returns the nodes
// start .. goal.
std::optional<std::vector<uint32_t>> findPath(const Graph& g, uint32_t start, uint32_t goal) {
  // (node, parent) in visiting order, which is also the queue: a kernel's
  // graph has a few dozen nodes, so a flat list beats clearing a table of
  // every possible node for each new edge of each new kernel.
  std::vector<std::pair<uint32_t, uint32_t>> seen{{start, start}};
  auto parentOf = [&seen](uint32_t n) {
    for (const auto& [node, parent] : seen)
      if (node == n) return parent;
    return kNoNode;
  };
  for (size_t i = 0; i < seen.size(); ++i) {
    const uint32_t n = seen[i].first;
    if (n == goal) {
      std::vector<uint32_t> path{goal};
      for (uint32_t p = goal; p != start; p = parentOf(p)) path.push_back(parentOf(p));
      std::reverse(path.begin(), path.end());
      return path;
    }
    for (const Edge& e : edgesFrom(g, n))
      if (parentOf(e.to) == kNoNode) seen.emplace_back(e.to, n);
  }
  return std::nullopt;
}

// print_circular_bug(): `next` is being taken while `held` is held, and the
// graph already has `path` from next's node to held's node.
std::string circularText(const Graph& g, const Task& t, const HeldLock& held, const HeldLock& next,
                         const std::vector<uint32_t>& path) {
  std::string s = banner("WARNING: possible circular locking dependency detected");
  s += fmt::format("{} is trying to acquire lock:\n {}\n\n", who(t), describe(next));
  s += fmt::format("but task is already holding lock:\n {}\n\n", describe(held));
  s += "which lock already depends on the new lock.\n\n";
  s += "the existing dependency chain (in reverse order) is:\n\n";
  for (size_t i = path.size() - 1; i > 0; --i) {
    const Edge& e = findEdge(g, path[i - 1], path[i]);
    s += fmt::format("-> #{} ({}){}:\n       first seen at {} by {}/{} (after ({}) at {})\n", i,
                     nodeName(g, path[i]), usageString(path[i]), at(e.toWhere), e.comm, e.pid,
                     nodeName(g, path[i - 1]), at(e.fromWhere));
  }
  s += fmt::format("-> #0 ({}){}:\n       first seen at {} by {} (after ({}) at {})\n\n",
                   lockName(next), usageString(nodeOf(next)), at(next.where), who(t),
                   lockName(held), at(held.where));

  // print_circular_lock_scenario(): CPU0 holds the target, CPU1 comes to it
  // through the lock just before it on the chain.
  const std::string source = lockName(next);
  const std::string target = lockName(held);
  const std::string parent = nodeName(g, path[path.size() - 2]);
  s += "other info that might help us debug this:\n\n";
  if (path.size() > 2)
    s += fmt::format("Chain exists of:\n  {} --> {} --> {}\n\n", source, parent, target);
  s += " Possible unsafe locking scenario:\n\n";
  s += "       CPU0                    CPU1\n";
  s += "       ----                    ----\n";
  s += fmt::format("  lock({});\n", target);
  s += fmt::format("                               lock({});\n", parent);
  s += fmt::format("                               lock({});\n", target);
  s += fmt::format("  lock({});\n", source);
  s += "\n *** DEADLOCK ***\n\n";
  return s + heldList(t);
}

// check_prevs_add(): an edge from every held lock to `next`, each checked for
// the cycle it would close. A closing edge is added all the same, so each
// cycle is reported once, when its last edge first appears.
void addDependencies(const Task& t, const HeldLock& next) {
  const uint32_t to = nodeOf(next);
  std::vector<std::string> cycles;
  {
    Graph& g = graph();
    std::lock_guard guard(g.mu);
    g.classOf[to] = next.cls;
    for (const HeldLock& held : t.held) {
      const uint32_t from = nodeOf(held);
      if (from == to || edgeKnown(g, from, to)) continue;
      g.classOf[from] = held.cls;
      if (auto path = findPath(g, to, from))
        cycles.push_back(circularText(g, t, held, next, *path));
      g.out[from].push_back(Edge{to, held.where, next.where, t.comm, t.pid});
      setEdgeKnown(g, from, to);
    }
  }
  for (std::string& text : cycles) {
    record(ReportKind::kCircularDependency, next.cls->name(), false, next.where,
           [&text] { return std::move(text); });
  }
}

// print_deadlock_bug()
std::string recursiveText(const Task& t, const HeldLock& held, const HeldLock& next) {
  std::string s = banner("WARNING: possible recursive locking detected");
  s += fmt::format("{} is trying to acquire lock:\n {}\n\n", who(t), describe(next));
  s += fmt::format("but task is already holding lock:\n {}\n\n", describe(held));
  s += "other info that might help us debug this:\n";
  s += " Possible unsafe locking scenario:\n\n";
  s += "       CPU0\n";
  s += "       ----\n";
  s += fmt::format("  lock({});\n  lock({});\n", lockName(held), lockName(next));
  s += "\n *** DEADLOCK ***\n\n";
  s += " May be due to missing lock nesting notation\n\n";
  return s + heldList(t);
}

// validate_chain() for a blocking acquisition, when it may have something
// to report or to add.
void validateSlow(const Task& t, const HeldLock& next) {
  const uint32_t to = nodeOf(next);
  auto same = std::find_if(t.held.begin(), t.held.end(),
                           [to](const HeldLock& h) { return nodeOf(h) == to; });
  if (same != t.held.end()) {
    record(ReportKind::kRecursiveLocking, next.cls->name(), true, next.where,
           [&] { return recursiveText(t, *same, next); });
  }
  const Graph& g = graph();
  const bool allKnown = std::all_of(t.held.begin(), t.held.end(), [&g, to](const HeldLock& h) {
    return nodeOf(h) == to || edgeKnown(g, nodeOf(h), to);
  });
  if (!allKnown) addDependencies(t, next);
}

// Whether validate_chain() has nothing to check: every dependency of `to`
// on the held locks is in the graph and no held lock is of its class again.
// Linux finds that by a hash of the held chain (lookup_chain_cache()); the
// model's bit per edge answers it with one test per held lock.
bool chainKnown(const State& s, const Task& t, uint32_t to) {
  for (const HeldLock& h : t.held) {
    const uint32_t from = nodeOf(h);
    if (from == to || !edgeKnown(s.graph, from, to)) return false;
  }
  return true;
}

// print_unlock_imbalance_bug()
void badUnlock(const Task& t, std::string_view name, const Loc& where) {
  record(ReportKind::kBadUnlock, name, true, where, [&] {
    std::string s = banner("WARNING: bad unlock balance detected!");
    s += fmt::format("{} is trying to release lock ({}) at:\n{}\n", who(t), name, at(where));
    s += "but there are no more locks to release!\n\n";
    s += "other info that might help us debug this:\n";
    return s + heldList(t);
  });
}

std::string nameOrAddress(const void* lock, const LockClass* cls) {
  return cls != nullptr ? std::string(cls->name()) : fmt::format("{}", lock);
}

void releaseLock(const void* lock, const LockClass* cls, const Loc& where) {
  if (!enabled()) return;
  Task& t = current();
  // Most releases are of the newest lock.
  if (!t.held.empty() && t.held.back().lock == lock) [[likely]] {
    t.held.pop_back();
    return;
  }
  auto it = findHeld(t, lock);
  if (it == t.held.end()) return badUnlock(t, nameOrAddress(lock, cls), where);
  t.held.erase(it);
}

void downgradeLock(const void* lock, const LockClass* cls, const Loc& where) {
  if (!enabled()) return;
  Task& t = current();
  auto it = findHeld(t, lock);
  if (it == t.held.end()) return badUnlock(t, nameOrAddress(lock, cls), where);
  it->mode = Mode::kShared;
  it->where = where;
  markUsed(state(), nodeOf(*it), Mode::kShared);
}

// A WARN splat; the held locks are listed only while lockdep tracks them.
void warnImpl(ReportKind kind, std::string_view name, std::string_view what, const Loc& where) {
  record(kind, name, true, where, [&] {
    const Task& t = current();
    const std::string cpu = t.cpu < 0 ? "?" : std::to_string(t.cpu);
    std::string s = "------------[ cut here ]------------\n";
    s += fmt::format("WARNING: CPU: {} PID: {} at {} {}\n", cpu, t.pid, at(where),
                     where.function_name());
    s += fmt::format("{}\n", what);
    s += fmt::format("CPU: {} PID: {} Comm: {}\n", cpu, t.pid, t.comm);
    if (enabled()) s += heldList(t);
    return s + "---[ end trace ]---\n";
  });
}

const HeldLock* heldEntry(const void* lock) {
  Task& t = current();
  auto it = findHeld(t, lock);
  return it == t.held.end() ? nullptr : &*it;
}

std::string_view heldState(const HeldLock* h) {
  if (h == nullptr) return "not held";
  return h->mode == Mode::kShared ? "held for read" : "held for write";
}

}  // namespace

std::string_view reportKindName(ReportKind kind) {
  switch (kind) {
    case ReportKind::kCircularDependency: return "circular-dependency";
    case ReportKind::kRecursiveLocking: return "recursive-locking";
    case ReportKind::kAssertHeld: return "assert-held";
    case ReportKind::kAssertHeldRead: return "assert-held-read";
    case ReportKind::kAssertHeldWrite: return "assert-held-write";
    case ReportKind::kAssertNotHeld: return "assert-not-held";
    case ReportKind::kAssertNoLocksHeld: return "assert-no-locks-held";
    case ReportKind::kBadUnlock: return "bad-unlock";
  }
  return "unknown";
}

void acquire(const void* lock, const LockClass& cls, unsigned subclass, Mode mode, bool trylock,
             SourceLocation where) {
  SyncContext& context = SyncContext::current();
  if (!context.lockdepOn()) return;
  VFIOMM_ASSERT_MSG(subclass < LockClass::kMaxSubclasses, "lockdep: subclass out of range");
  State& s = context.lockdep();
  Task& t = current();
  const uint32_t node = nodeOf(cls, subclass);
  markUsed(s, node, mode);
  // A trylock cannot block, so it depends on nothing held (validate_chain()
  // skips it); held, it is the source of later edges like any lock.
  if (!trylock && !chainKnown(s, t, node)) [[unlikely]]
    validateSlow(t, HeldLock{lock, &cls, subclass, mode, trylock, where});
  // Field by field from the arguments rather than a copy of a HeldLock
  // built on the stack: the copy reloads the fields just stored as wider
  // words, which the CPU cannot forward from the stores (a stall that was
  // half of acquire()'s time).
  HeldLock& held = t.held.emplace_back();
  held.lock = lock;
  held.cls = &cls;
  held.subclass = subclass;
  held.mode = mode;
  held.trylock = trylock;
  held.where = where;
}

void release(const void* lock, SourceLocation where) { releaseLock(lock, nullptr, where); }
void release(const void* lock, const LockClass& cls, SourceLocation where) {
  releaseLock(lock, &cls, where);
}
void downgrade(const void* lock, SourceLocation where) { downgradeLock(lock, nullptr, where); }
void downgrade(const void* lock, const LockClass& cls, SourceLocation where) {
  downgradeLock(lock, &cls, where);
}

bool isHeld(const void* lock) { return heldEntry(lock) != nullptr; }

bool isHeldMode(const void* lock, Mode mode) {
  const HeldLock* h = heldEntry(lock);
  return h != nullptr && h->mode == mode;
}

std::vector<HeldLock> heldLocks() { return current().held; }

bool assertHeld(const void* lock, const LockClass& cls, SourceLocation where) {
  if (!enabled() || isHeld(lock)) return true;
  warnImpl(ReportKind::kAssertHeld, cls.name(), fmt::format("lock not held: {}", cls.name()),
           where);
  return false;
}

bool assertHeldRead(const void* lock, const LockClass& cls, SourceLocation where) {
  if (!enabled()) return true;
  const HeldLock* h = heldEntry(lock);
  if (h != nullptr && h->mode == Mode::kShared) return true;
  warnImpl(ReportKind::kAssertHeldRead, cls.name(),
           fmt::format("lock not held for read: {} ({})", cls.name(), heldState(h)), where);
  return false;
}

bool assertHeldWrite(const void* lock, const LockClass& cls, SourceLocation where) {
  if (!enabled()) return true;
  const HeldLock* h = heldEntry(lock);
  if (h != nullptr && h->mode == Mode::kExclusive) return true;
  warnImpl(ReportKind::kAssertHeldWrite, cls.name(),
           fmt::format("lock not held for write: {} ({})", cls.name(), heldState(h)), where);
  return false;
}

bool assertNotHeld(const void* lock, const LockClass& cls, SourceLocation where) {
  if (!enabled()) return true;
  const HeldLock* h = heldEntry(lock);
  if (h == nullptr) return true;
  warnImpl(ReportKind::kAssertNotHeld, cls.name(),
           fmt::format("lock held but must not be: {} ({})", cls.name(), heldState(h)), where);
  return false;
}

bool assertNoLocksHeld(SourceLocation where) {
  if (!enabled()) return true;
  const Task& t = current();
  if (t.held.empty()) return true;
  const HeldLock& newest = t.held.back();
  warnImpl(ReportKind::kAssertNoLocksHeld, newest.cls->name(),
           fmt::format("locks held where none may be, newest: {}", lockName(newest)), where);
  return false;
}

void warn(ReportKind kind, const LockClass& cls, std::string_view what, SourceLocation where) {
  warnImpl(kind, cls.name(), what, where);
}

void setEnabled(bool on) { SyncContext::current().setLockdepOn(on); }

void setThreadIdentity(std::string_view comm, int pid, int cpu) {
  Task& t = current();
  t.comm = std::string(comm);
  t.pid = pid;
  t.cpu = cpu;
}

ThreadIdentity threadIdentity() {
  const Task& t = current();
  return ThreadIdentity{t.comm, t.pid, t.cpu};
}

size_t reportCount() {
  ReportLog& log = reportLog();
  std::lock_guard guard(log.mu);
  size_t total = 0;
  for (size_t n : log.counts) total += n;
  return total;
}

size_t reportCount(ReportKind kind) {
  ReportLog& log = reportLog();
  std::lock_guard guard(log.mu);
  return log.counts[static_cast<size_t>(kind)];
}

std::vector<Report> reports() {
  ReportLog& log = reportLog();
  std::lock_guard guard(log.mu);
  return log.kept;
}

void clearReports() {
  ReportLog& log = reportLog();
  std::lock_guard guard(log.mu);
  log.kept.clear();
  log.counts = {};
  log.printedSites.clear();
}

void resetGraph() {
  State& s = state();
  Graph& g = s.graph;
  std::lock_guard guard(g.mu);
  for (const std::unique_ptr<EdgeRow>& row : g.rowStore)
    for (std::atomic<uint64_t>& word : row->bits) word.store(0, std::memory_order_relaxed);
  g.out.clear();
  for (std::atomic<uint8_t>& u : s.usage) u.store(0, std::memory_order_relaxed);
}

void setReportSink(std::function<void(const Report&)> sink) {
  ReportLog& log = reportLog();
  std::lock_guard guard(log.mu);
  log.sink = std::move(sink);
}

bool hasDependency(const LockClass& from, const LockClass& to) {
  for (unsigned fs = 0; fs < LockClass::kMaxSubclasses; ++fs) {
    for (unsigned ts = 0; ts < LockClass::kMaxSubclasses; ++ts) {
      if (edgeKnown(graph(), nodeOf(from, fs), nodeOf(to, ts))) return true;
    }
  }
  return false;
}

std::vector<std::pair<std::string, std::string>> dependencies() {
  Graph& g = graph();
  std::lock_guard guard(g.mu);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [from, edges] : g.out)
    for (const Edge& e : edges) out.emplace_back(nodeName(g, from), nodeName(g, e.to));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace vfiomm::lockdep
