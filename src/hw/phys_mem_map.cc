#include "hw/phys_mem_map.h"

#include <algorithm>

#include "base/assert.h"
#include "base/counter.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(unassignedAccess, "hw.phys.unassigned_access",
               "loads and stores to a physical address no region decodes (master abort: "
               "reads return all ones, writes are dropped)");

// Allocates the object `slot` points to unless a racing writer already did;
// returns the one that stays.
template <typename T>
T* installOnce(std::atomic<T*>& slot, std::atomic<uint64_t>* allocated) {
  T* cur = slot.load(std::memory_order_acquire);
  if (cur != nullptr) return cur;
  auto fresh = std::make_unique<T>();
  if (slot.compare_exchange_strong(cur, fresh.get(), std::memory_order_acq_rel,
                                   std::memory_order_acquire)) {
    if (allocated != nullptr) allocated->fetch_add(1, std::memory_order_relaxed);
    return fresh.release();
  }
  return cur;  // lost the race: `fresh` is freed, the winner's object stays
}

}  // namespace

// --- PhysRegion ----------------------------------------------------------------

PhysRegion::PhysRegion(std::string name, PhysAddr base, uint64_t size)
    : name_(std::move(name)), base_(base), size_(size) {
  VFIOMM_ASSERT_MSG(isPageAligned(base.value()) && isPageAligned(size) && size > 0,
                    "a physical region is whole pages");
  VFIOMM_ASSERT_MSG(base.value() + size > base.value(), "physical region wraps");
}

void PhysRegion::badShape(unsigned size) {
  if (!isPowerOfTwo(size) || size > 8)
    assertFailed("size is 1, 2, 4 or 8", "bad access size", SourceLocation::current());
  assertFailed("isAligned(addr, size)", "unaligned access", SourceLocation::current());
}

void PhysRegion::outside(uint64_t /*offset*/) const {
  assertFailed("offset < size()", "access outside its region", SourceLocation::current());
}

// --- RamRegion -------------------------------------------------------------------

RamRegion::RamRegion(std::string name, PhysAddr base, uint64_t size)
    : PhysRegion(std::move(name), base, size),
      directoryCount_((size + kPmdSize - 1) >> kPmdShift),
      directories_(std::make_unique<std::atomic<Directory*>[]>(directoryCount_)) {}

RamRegion::~RamRegion() {
  for (uint64_t d = 0; d < directoryCount_; ++d) {
    Directory* dir = directories_[d].load(std::memory_order_relaxed);
    if (dir == nullptr) continue;
    for (auto& page : dir->pages) delete page.load(std::memory_order_relaxed);
    delete dir;
  }
}

HostPage* RamRegion::findPage(uint64_t offset) const {
  const Directory* dir = directories_[offset >> kPmdShift].load(std::memory_order_acquire);
  if (dir == nullptr) return nullptr;
  return dir->pages[(offset >> kPageShift) & (kPtrsPerTable - 1)].load(std::memory_order_acquire);
}

HostPage& RamRegion::pageForWrite(uint64_t offset) {
  Directory* dir = installOnce(directories_[offset >> kPmdShift], nullptr);
  return *installOnce(dir->pages[(offset >> kPageShift) & (kPtrsPerTable - 1)], &allocatedPages_);
}

uint64_t RamRegion::doRead(uint64_t offset, unsigned size, const AccessInfo& /*info*/) {
  const HostPage* page = findPage(offset);
  return page == nullptr ? 0 : page->load(offset & (kPageSize - 1), size);
}

void RamRegion::doWrite(uint64_t offset, unsigned size, uint64_t value,
                        const AccessInfo& /*info*/) {
  pageForWrite(offset).store(offset & (kPageSize - 1), size, value);
}

// --- PhysMemMap ------------------------------------------------------------------

PhysMemMap::PhysMemMap() {
  snapshots_.push_back(std::make_unique<Snapshot>());
  current_.store(snapshots_.back().get(), std::memory_order_release);
}

PhysMemMap::~PhysMemMap() = default;

void PhysMemMap::publish(std::unique_ptr<Snapshot> next) {
  current_.store(next.get(), std::memory_order_release);
  snapshots_.push_back(std::move(next));
}

void PhysMemMap::registerRegion(PhysRegion& region) {
  std::lock_guard lock(writerMu_);
  auto next = std::make_unique<Snapshot>(*current_.load(std::memory_order_relaxed));
  const Range added{region.firstPfn().value(), region.endPfn().value(), &region};
  auto pos =
      std::lower_bound(next->ranges.begin(), next->ranges.end(), added,
                       [](const Range& a, const Range& b) { return a.firstPfn < b.firstPfn; });
  VFIOMM_ASSERT_MSG(pos == next->ranges.end() || pos->firstPfn >= added.endPfn,
                    "physical regions overlap");
  VFIOMM_ASSERT_MSG(pos == next->ranges.begin() || std::prev(pos)->endPfn <= added.firstPfn,
                    "physical regions overlap");
  next->ranges.insert(pos, added);
  publish(std::move(next));
}

void PhysMemMap::unregisterRegion(PhysRegion& region) {
  std::lock_guard lock(writerMu_);
  auto next = std::make_unique<Snapshot>(*current_.load(std::memory_order_relaxed));
  const auto removed =
      std::erase_if(next->ranges, [&](const Range& r) { return r.region == &region; });
  VFIOMM_ASSERT_MSG(removed == 1, "unregistering a region that is not registered");
  publish(std::move(next));
}

PhysRegion* PhysMemMap::lookup(Pfn pfn) const {
  const std::vector<Range>& ranges = current_.load(std::memory_order_acquire)->ranges;
  // The last range starting at or below pfn is the only candidate.
  auto it = std::upper_bound(ranges.begin(), ranges.end(), pfn.value(),
                             [](uint64_t p, const Range& r) { return p < r.firstPfn; });
  if (it == ranges.begin()) return nullptr;
  --it;
  return pfn.value() < it->endPfn ? it->region : nullptr;
}

uint64_t PhysMemMap::read(PhysAddr pa, unsigned size, const AccessInfo& info) const {
  PhysRegion* region = lookup(Pfn::fromPhys(pa));
  if (region == nullptr) {
    PhysRegion::checkShape(pa.value(), size);
    unassignedAccess.add();
    return allOnes(size);
  }
  return region->read(pa - region->base(), size, info);
}

void PhysMemMap::write(PhysAddr pa, unsigned size, uint64_t value, const AccessInfo& info) const {
  PhysRegion* region = lookup(Pfn::fromPhys(pa));
  if (region == nullptr) {
    PhysRegion::checkShape(pa.value(), size);
    unassignedAccess.add();
    return;
  }
  region->write(pa - region->base(), size, value, info);
}

size_t PhysMemMap::regionCount() const {
  return current_.load(std::memory_order_acquire)->ranges.size();
}

}  // namespace vfiomm
