#include "mm/vm_commit.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/counter.h"
#include "base/kernel_log.h"
#include "base/page_geometry.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(overcommitRefused, "mm.overcommit_refused",
               "__vm_enough_memory refusals (not enough memory for the allocation)");

uint64_t kbToPages(uint64_t kb) { return kb >> (kPageShift - 10); }

}  // namespace

uint64_t VmCommit::commitLimitPages() const {
  const uint64_t swap = memory_.swapBytes >> kPageShift;
  if (memory_.overcommitKbytes != 0) return kbToPages(memory_.overcommitKbytes) + swap;
  // RAM less the hugetlb pool (hugetlb_total_pages()): huge pages are
  // reserved from the pool, not committed.
  const uint64_t hugetlbPages = memory_.hugepages2M * (kPmdSize >> kPageShift) +
                                memory_.hugepages1G * (kPudSize >> kPageShift);
  return ((memory_.ramBytes >> kPageShift) - hugetlbPages) * memory_.overcommitRatio / 100 + swap;
}

Status VmCommit::enoughMemory(uint64_t pages, const Caller& caller, bool logBytes) {
  const uint64_t committed = committed_.fetch_add(pages, std::memory_order_relaxed) + pages;
  switch (memory_.overcommitMemory) {
    case OvercommitMode::kAlways: return ok();
    case OvercommitMode::kGuess:
      // Only a single request larger than RAM + swap is refused.
      if (pages <= (memory_.ramBytes >> kPageShift) + (memory_.swapBytes >> kPageShift))
        return ok();
      break;
    case OvercommitMode::kNever: {
      // The limit less the admin reserve (no CAP_SYS_ADMIN) and the user
      // reserve; signed, as the kernel computes it.
      auto allowed = static_cast<int64_t>(commitLimitPages());
      allowed -= static_cast<int64_t>(kbToPages(memory_.adminReserveKbytes));
      allowed -= static_cast<int64_t>(
          std::min(caller.totalVmPages / 32, kbToPages(memory_.userReserveKbytes)));
      if (static_cast<int64_t>(committed) < allowed) return ok();
      break;
    }
  }
  committed_.fetch_sub(pages, std::memory_order_relaxed);
  overcommitRefused.add();
  // pr_warn_ratelimited().
  const std::string bytes = logBytes ? fmt::format("bytes: {} ", pages << kPageShift) : "";
  log_.print(fmt::format(
      "__vm_enough_memory: pid: {}, comm: {:.20}, {}not enough memory for the allocation",
      caller.pid, caller.comm, bytes));
  return fail(Errno::kENOMEM);
}

}  // namespace vfiomm
