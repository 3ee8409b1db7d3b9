#include "fs/hugetlbfs.h"

#include "base/page_geometry.h"
#include "mm/system_ram.h"
#include "mm/vm_flags.h"
#include "mm/vma.h"

namespace vfiomm {

uint64_t HugetlbFile::sizeFromMapFlags(int flags) {
  const int log2 = (flags >> map::kHugeShift) & map::kHugeMask;
  if (log2 == 0) return kPmdSize;  // default_hstate on x86-64
  const uint64_t size = uint64_t{1} << log2;
  return SystemRam::isHstate(size) ? size : 0;
}

HugetlbFile::HugetlbFile(SystemRam& ram, uint64_t hugePageSize, uint64_t size)
    : ram_(ram), hugePageSize_(hugePageSize), size_(size), inode_(0) {}

HugetlbFile::~HugetlbFile() {
  if (reserved_ != 0) ram_.unreserveHugePages(hugePageSize_, reserved_);
}

Status HugetlbFile::mmap(Vma& vma) {
  if (vma.pgoff().toBytes() % hugePageSize_ != 0) return fail(Errno::kEINVAL);
  vma.flagsSet(vm::kHugetlb | vm::kDontExpand);
  if (vma.flags() & vm::kNoReserve) return ok();
  const uint64_t pages = vma.length() / hugePageSize_;
  if (auto st = ram_.reserveHugePages(hugePageSize_, pages); !st) return st;
  std::lock_guard<std::mutex> g(mu_);
  reserved_ += pages;
  return ok();
}

Result<Pfn> HugetlbFile::findOrAllocPage(uint64_t index) {
  const uint64_t perHuge = hugePageSize_ / kPageSize;
  if (index * kPageSize >= size_) return fail(Errno::kEINVAL);
  std::lock_guard<std::mutex> g(mu_);
  auto it = pages_.find(index / perHuge);
  if (it == pages_.end()) {
    auto pfn = ram_.allocHugePage(hugePageSize_, reserved_ != 0);
    if (!pfn) return pfn;
    if (reserved_ != 0) --reserved_;
    it = pages_.emplace(index / perHuge, *pfn).first;
  }
  return it->second + index % perHuge;
}

}  // namespace vfiomm
