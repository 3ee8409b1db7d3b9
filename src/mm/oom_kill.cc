#include "mm/oom_kill.h"

#include "base/kernel_log.h"

namespace vfiomm {

void OomKill::pagefaultOutOfMemory() {
  // Counted only up to the burst, so that the count never wraps.
  if (printed_.load(std::memory_order_relaxed) >= kRatelimitBurst) return;
  if (printed_.fetch_add(1, std::memory_order_relaxed) < kRatelimitBurst)
    log_.print("Huh VM_FAULT_OOM leaked out to the #PF handler. Retrying PF");
}

}  // namespace vfiomm
