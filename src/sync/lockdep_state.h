// What lockdep knows of one kernel (SyncContext::lockdep()): the dependency
// graph between lock classes, how each class was used, and the reports.
// Only sync/lockdep.cc reads it; SyncContext owns it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "base/source_location.h"
#include "sync/lock_class.h"
#include "sync/lockdep.h"

namespace vfiomm::lockdep {

// A graph node is a class in one subclass, as a struct lock_class is in Linux.
inline constexpr uint32_t kMaxNodes = LockClass::kMaxClasses * LockClass::kMaxSubclasses;
inline constexpr size_t kReportKinds = static_cast<size_t>(ReportKind::kBadUnlock) + 1;

// Where a dependency was first seen: `to` taken at toWhere while `from` was
// held since fromWhere, by comm/pid.
struct Edge {
  uint32_t to;
  SourceLocation fromWhere;
  SourceLocation toWhere;
  std::string comm;
  int pid;
};

// One bit per possible edge out of one node, so that an acquisition whose
// dependencies are all known (the common case) checks them without taking
// the graph's mutex. A row exists once its node has an edge: a kernel that
// uses a few dozen classes pays for a few dozen rows, not for every pair.
struct EdgeRow {
  std::array<std::atomic<uint64_t>, kMaxNodes / 64> bits{};
};

struct Graph {
  std::mutex mu;  // not a model lock: lockdep's own graph_lock
  std::unordered_map<uint32_t, std::vector<Edge>> out;
  std::unordered_map<uint32_t, const LockClass*> classOf;
  std::vector<std::unique_ptr<EdgeRow>> rowStore;
  // Published with release once the row exists; bits are set only under mu,
  // after the edge is in `out`.
  std::array<std::atomic<EdgeRow*>, kMaxNodes> rows{};
};

struct ReportLog {
  std::mutex mu;  // not a model lock
  std::vector<Report> kept;
  std::array<size_t, kReportKinds> counts{};
  std::set<std::tuple<ReportKind, std::string_view, uint_least32_t>> printedSites;
  std::function<void(const Report&)> sink;
};

struct State {
  Graph graph;
  ReportLog log;
  // {+.+.} of a splat: the modes each node was taken in.
  std::array<std::atomic<uint8_t>, kMaxNodes> usage{};
};

}  // namespace vfiomm::lockdep
