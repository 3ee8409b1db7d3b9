// HugetlbFile: the unlinked hugetlbfs file behind an anonymous MAP_HUGETLB
// mapping (hugetlb_file_setup(), fs/hugetlbfs/inode.c; mm/hugetlb.c). Its
// pages are huge pages of one hstate from the kernel's pool (SystemRam):
// physically contiguous and naturally aligned, so pinning a mapping of it
// yields runs of contiguous pfns an IOMMU can map with large IOPTEs
// (IOMMUFD-08). The mapping reserves its pages at mmap and takes each from
// the pool at its first use; the model's CPU does not fault them in (it
// gives anonymous memory no contents either), only GUP takes them.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

#include "fs/inode.h"
#include "mm/file.h"

namespace vfiomm {

class SystemRam;

class HugetlbFile : public File {
 public:
  // hstate_sizelog(): the huge page size a MAP_HUGETLB request's
  // MAP_HUGE_* bits name (0: the default, 2 MiB); 0 when the pool has no
  // such size (-EINVAL to mmap).
  static uint64_t sizeFromMapFlags(int flags);

  // A file of `size` bytes (a multiple of `hugePageSize`).
  HugetlbFile(SystemRam& ram, uint64_t hugePageSize, uint64_t size);
  // The reservations the mapping did not use go back to the pool.
  ~HugetlbFile() override;

  AddressSpace* mapping() const override { return &inode_.mapping(); }
  // hugetlbfs_file_mmap(): VM_HUGETLB | VM_DONTEXPAND; the file offset
  // must be huge-page aligned (-EINVAL); the mapping's pages are reserved
  // unless VM_NORESERVE (-ENOMEM when the pool lacks them).
  Status mmap(Vma& vma) override;
  uint64_t hugePageSize() const override { return hugePageSize_; }
  // The huge page holding 4 KiB page `index`, taken from the pool at its
  // first use; -ENOMEM when the pool has none left for it; -EINVAL past
  // the end of the file.
  Result<Pfn> findOrAllocPage(uint64_t index) override;
  // punchHole() keeps File's -ENODEV: hugetlbfs_fallocate() would free the
  // hole's huge pages to the pool once nobody pins them, and the model
  // keeps no count of pins to know when.

 private:
  SystemRam& ram_;
  const uint64_t hugePageSize_;
  const uint64_t size_;
  mutable Inode inode_;
  // hugetlb_fault_mutex_table: one allocation of a page at a time. Not a
  // model lock (no lockdep class): nothing nests inside it.
  std::mutex mu_;
  std::map<uint64_t, Pfn> pages_;  // huge page index -> its first frame
  uint64_t reserved_ = 0;          // reservations not used yet
};

}  // namespace vfiomm
