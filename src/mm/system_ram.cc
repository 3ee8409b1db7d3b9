#include "mm/system_ram.h"

namespace vfiomm {

SystemRam::SystemRam(Machine& machine)
    : machine_(machine), region_("System RAM", PhysAddr(kBase), kSize) {
  machine_.registerRegion(region_);
}

SystemRam::~SystemRam() { machine_.unregisterRegion(region_); }

Result<Pfn> SystemRam::frameFor(uint64_t mmId, VirtAddr page) {
  std::lock_guard<std::mutex> g(mu_);
  const auto key = std::make_pair(mmId, page.value() >> kPageShift);
  auto it = frames_.find(key);
  if (it != frames_.end()) return it->second;
  if (nextFrame_ == kSize / kPageSize) return fail(Errno::kENOMEM);
  const Pfn pfn(region_.firstPfn().value() + nextFrame_++);
  frames_.emplace(key, pfn);
  return pfn;
}

}  // namespace vfiomm
