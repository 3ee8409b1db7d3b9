// ShmemFile: a memfd (memfd_create(2), mm/memfd.c over mm/shmem.c): an
// unlinked shmem file whose size ftruncate() sets and whose pages are
// allocated at their first use. The model gives the pages no contents; a
// page exists for GUP and memfd_pin_folios() to pin (IOMMU_IOAS_MAP_FILE
// of a memfd, DMABUF-02), one 4 KiB frame of system RAM each.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

#include "fs/inode.h"
#include "mm/file.h"

namespace vfiomm {

class SystemRam;

class ShmemFile : public File {
 public:
  explicit ShmemFile(SystemRam& ram);

  AddressSpace* mapping() const override { return &inode_.mapping(); }
  // shmem_mmap(): any range of the file; the model's CPU does not fault
  // its pages in (it gives anonymous memory no contents either).
  Status mmap(Vma&) override { return ok(); }
  // shmem_get_folio(): the page at `index`, allocated at its first use;
  // -EINVAL past i_size.
  Result<Pfn> findOrAllocPage(uint64_t index) override;

  // shmem_fallocate(FALLOC_FL_PUNCH_HOLE): the whole pages of the range
  // leave the file, so their next use allocates fresh ones; a page still
  // pinned (an IOMMU mapping) keeps its frame. The model has no seals to
  // refuse it and no contents to zero in the partial pages at the ends.
  Status punchHole(uint64_t offset, uint64_t len) override;
  // shmem_setattr() of ATTR_SIZE, for ftruncate(2). Pages past a smaller
  // size are not taken back: the model never frees a frame (SystemRam).
  void setSize(uint64_t size);

 private:
  SystemRam& ram_;
  mutable Inode inode_;
  // The shmem inode's i_rwsem and mapping lock in one; not a model lock
  // (no lockdep class): nothing nests inside it.
  std::mutex mu_;
  uint64_t size_ = 0;              // i_size
  std::map<uint64_t, Pfn> pages_;  // page index -> frame
};

}  // namespace vfiomm
