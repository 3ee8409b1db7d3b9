#include "mm/pat_memtype.h"

#include <fmt/format.h>

#include "base/counter.h"
#include "base/kernel_log.h"
#include "sync/lockdep.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(memtypeInvalidFree, "mm.pat.invalid_free",
               "memtype_free() of a range no reservation matches (its log line)");

// cattr_name(_PAGE_CACHE_MODE_UC_MINUS): the only mode the model reserves.
constexpr std::string_view kUncachedMinus = "uncached-minus";

}  // namespace

void PatMemtype::reserve(PhysAddr start, PhysAddr end) {
  SpinGuard g(lock_);
  tree_.emplace(start.value(), end.value());
}

bool PatMemtype::free(PhysAddr start, PhysAddr end) {
  {
    SpinGuard g(lock_);
    // memtype_match(): the entries overlapping [start, end), by start.
    auto endMatch = tree_.end();
    for (auto it = tree_.begin(); it != tree_.end() && it->first < end.value(); ++it) {
      if (it->second != end.value()) continue;
      if (it->first == start.value()) {
        tree_.erase(it);  // munmap: the whole reservation
        return true;
      }
      if (it->first < start.value() && endMatch == tree_.end()) endMatch = it;
    }
    if (endMatch != tree_.end()) {
      endMatch->second = start.value();  // mremap: its tail
      return true;
    }
  }
  memtypeInvalidFree.add();
  const lockdep::ThreadIdentity current = lockdep::threadIdentity();
  log_.print(fmt::format("x86/PAT: {}:{} freeing invalid memtype [mem {:#010x}-{:#010x}]",
                         current.comm, current.pid, start.value(), end.value() - 1));
  return false;
}

void PatMemtype::warnOnce(WarnSite site) {
  const auto bit = static_cast<uint8_t>(1U << static_cast<unsigned>(site));
  {
    SpinGuard g(lock_);
    if (warned_ & bit) return;
    warned_ |= bit;
  }
  const lockdep::ThreadIdentity current = lockdep::threadIdentity();
  const std::string onCpu = current.cpu < 0 ? "?" : std::to_string(current.cpu);
  log_.print("------------[ cut here ]------------");
  log_.print(fmt::format("WARNING: CPU: {} PID: {} at arch/x86/mm/pat/memtype.c {}", onCpu,
                         current.pid,
                         site == WarnSite::kUntrackPfn ? "untrack_pfn" : "track_pfn_copy"));
  log_.print(fmt::format("CPU: {} PID: {} Comm: {}", onCpu, current.pid, current.comm));
  log_.print("---[ end trace ]---");
}

std::vector<PatMemtype::Range> PatMemtype::ranges() const {
  SpinGuard g(lock_);
  std::vector<Range> out;
  out.reserve(tree_.size());
  for (const auto& [start, end] : tree_) out.push_back(Range{PhysAddr(start), PhysAddr(end)});
  return out;
}

std::string PatMemtype::memtypeList() const {
  std::string out = "PAT memtype list:\n";
  for (const Range& r : ranges())
    out += fmt::format("PAT: [mem 0x{:016x}-0x{:016x}] {}\n", r.start.value(), r.end.value(),
                       kUncachedMinus);
  return out;
}

}  // namespace vfiomm
