#include "fs/shmem.h"

#include "base/page_geometry.h"
#include "mm/system_ram.h"

namespace vfiomm {

ShmemFile::ShmemFile(SystemRam& ram) : ram_(ram), inode_(0) {}

Result<Pfn> ShmemFile::findOrAllocPage(uint64_t index) {
  std::lock_guard<std::mutex> g(mu_);
  if (index >= (size_ + kPageSize - 1) / kPageSize) return fail(Errno::kEINVAL);
  auto it = pages_.find(index);
  if (it != pages_.end()) return it->second;
  auto pfn = ram_.allocFrame();
  if (!pfn) return pfn;
  pages_.emplace(index, *pfn);
  return pfn;
}

Status ShmemFile::punchHole(uint64_t offset, uint64_t len) {
  std::lock_guard<std::mutex> g(mu_);
  const uint64_t first = pageAlignUp(offset) / kPageSize;
  const uint64_t end = (offset + len) / kPageSize;
  if (first < end) pages_.erase(pages_.lower_bound(first), pages_.lower_bound(end));
  return ok();
}

void ShmemFile::setSize(uint64_t size) {
  std::lock_guard<std::mutex> g(mu_);
  size_ = size;
}

}  // namespace vfiomm
