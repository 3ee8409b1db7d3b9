#include "pci/pci_allocator.h"

#include <algorithm>

#include "base/assert.h"
#include "base/page_geometry.h"

namespace vfiomm {

PciAllocator::PciAllocator(const HostBridgeWindows& windows) : windows_(windows) {}

std::vector<PciAllocator::Range>& PciAllocator::usedIn(PciWindow window) {
  return window == PciWindow::kIo ? ioUsed_ : memoryUsed_;
}

PciAllocator::Range PciAllocator::claimOf(PciWindow window, uint64_t start, uint64_t size) {
  if (window == PciWindow::kIo) return {start, start + size};
  return {pageAlignDown(start), pageAlignUp(start + size)};
}

void PciAllocator::insert(std::vector<Range>& used, Range r) {
  auto pos = std::lower_bound(used.begin(), used.end(), r.start,
                              [](const Range& u, uint64_t start) { return u.start < start; });
  used.insert(pos, r);
}

Result<uint64_t> PciAllocator::allocate(PciWindow window, uint64_t size) {
  VFIOMM_ASSERT_MSG(isPowerOfTwo(size), "a BAR's size is a power of two");
  const AddressWindow& w = window == PciWindow::kMem32   ? windows_.mem32
                           : window == PciWindow::kMem64 ? windows_.mem64
                                                         : windows_.io;
  const uint64_t align = window == PciWindow::kIo ? size : std::max(size, kPageSize);
  std::vector<Range>& used = usedIn(window);
  uint64_t candidate = roundUp(w.start, align);
  // First fit: step past every claimed range the candidate runs into.
  for (const Range& r : used) {
    const Range claim = claimOf(window, candidate, size);
    if (r.end <= claim.start) continue;
    if (r.start >= claim.end) break;
    candidate = roundUp(r.end, align);
  }
  if (candidate > w.end || w.end - candidate < size) return fail(Errno::kENOSPC);
  insert(used, claimOf(window, candidate, size));
  return candidate;
}

Status PciAllocator::reserve(PciWindow window, uint64_t start, uint64_t size) {
  const Range claim = claimOf(window, start, size);
  std::vector<Range>& used = usedIn(window);
  const bool taken = std::any_of(used.begin(), used.end(), [&](const Range& r) {
    return r.start < claim.end && claim.start < r.end;
  });
  if (taken) return fail(Errno::kEBUSY);
  insert(used, claim);
  return ok();
}

}  // namespace vfiomm
