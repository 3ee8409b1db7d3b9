#include "mm/system_ram.h"

#include "base/page_geometry.h"

namespace vfiomm {

namespace {

// Carves up to `count` naturally aligned pages of `size` below `*top`
// (and not below `floor`) into `free`, highest first; lowers `*top`.
void carve(uint64_t size, uint64_t count, uint64_t floor, uint64_t* top, std::vector<Pfn>* free) {
  for (uint64_t i = 0; i < count; ++i) {
    if (*top < size || ((*top - size) & ~(size - 1)) < floor) return;
    const uint64_t start = (*top - size) & ~(size - 1);
    free->push_back(Pfn::fromPhys(PhysAddr(start)));
    *top = start;
  }
}

}  // namespace

SystemRam::SystemRam(Machine& machine, HugetlbPoolConfig pool)
    : machine_(machine), region_("System RAM", PhysAddr(kBase), kSize) {
  machine_.registerRegion(region_);
  // The small pages from the top, then the gigantic ones below them, so
  // that a few 2 MiB pages do not cost a 1 GiB page its alignment.
  uint64_t top = kBase + kSize;
  carve(kPmdSize, pool.pages2M, kBase, &top, &huge2M_.free);
  carve(kPudSize, pool.pages1G, kBase, &top, &huge1G_.free);
  huge2M_.total = huge2M_.free.size();
  huge1G_.total = huge1G_.free.size();
  frameLimit_ = (top - kBase) / kPageSize;
}

SystemRam::~SystemRam() { machine_.unregisterRegion(region_); }

Result<Pfn> SystemRam::nextFrame() {
  if (nextFrame_ == frameLimit_) return fail(Errno::kENOMEM);
  return Pfn(region_.firstPfn().value() + nextFrame_++);
}

Result<Pfn> SystemRam::frameFor(uint64_t mmId, VirtAddr page) {
  std::lock_guard<std::mutex> g(mu_);
  const auto key = std::make_pair(mmId, page.value() >> kPageShift);
  auto it = frames_.find(key);
  if (it != frames_.end()) return it->second;
  auto pfn = nextFrame();
  if (!pfn) return pfn;
  frames_.emplace(key, *pfn);
  return pfn;
}

void SystemRam::forgetFrames(uint64_t mmId, VirtAddr start, VirtAddr end) {
  std::lock_guard<std::mutex> g(mu_);
  frames_.erase(frames_.lower_bound({mmId, start.value() >> kPageShift}),
                frames_.lower_bound({mmId, end.value() >> kPageShift}));
}

void SystemRam::moveFrames(uint64_t mmId, VirtAddr from, VirtAddr to, uint64_t len) {
  std::lock_guard<std::mutex> g(mu_);
  const uint64_t first = from.value() >> kPageShift;
  const uint64_t last = first + (len >> kPageShift);
  std::vector<std::pair<uint64_t, Pfn>> moving;
  for (auto it = frames_.lower_bound({mmId, first});
       it != frames_.end() && it->first.first == mmId && it->first.second < last;) {
    moving.emplace_back(it->first.second - first, it->second);
    it = frames_.erase(it);
  }
  // The destination held no pages: mremap() unmapped it first.
  for (const auto& [page, pfn] : moving)
    frames_.insert_or_assign({mmId, (to.value() >> kPageShift) + page}, pfn);
}

Result<Pfn> SystemRam::allocFrame() {
  std::lock_guard<std::mutex> g(mu_);
  return nextFrame();
}

bool SystemRam::isHstate(uint64_t size) { return size == kPmdSize || size == kPudSize; }

SystemRam::Hstate& SystemRam::hstate(uint64_t size) { return size == kPudSize ? huge1G_ : huge2M_; }

uint64_t SystemRam::hugePagesTotal(uint64_t size) {
  std::lock_guard<std::mutex> g(mu_);
  return hstate(size).total;
}

Status SystemRam::reserveHugePages(uint64_t size, uint64_t count) {
  std::lock_guard<std::mutex> g(mu_);
  Hstate& h = hstate(size);
  if (h.free.size() - h.reserved < count) return fail(Errno::kENOMEM);
  h.reserved += count;
  return ok();
}

void SystemRam::unreserveHugePages(uint64_t size, uint64_t count) {
  std::lock_guard<std::mutex> g(mu_);
  hstate(size).reserved -= count;
}

Result<Pfn> SystemRam::allocHugePage(uint64_t size, bool reserved) {
  std::lock_guard<std::mutex> g(mu_);
  Hstate& h = hstate(size);
  if (h.free.empty() || (!reserved && h.free.size() == h.reserved)) return fail(Errno::kENOMEM);
  if (reserved) --h.reserved;
  const Pfn pfn = h.free.back();
  h.free.pop_back();
  return pfn;
}

}  // namespace vfiomm
