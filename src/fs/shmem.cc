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

void ShmemFile::setSize(uint64_t size) {
  std::lock_guard<std::mutex> g(mu_);
  size_ = size;
}

}  // namespace vfiomm
