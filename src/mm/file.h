// The slice of struct file that mm needs: the mapping it maps (f_mapping),
// the mode it was opened with, and its ->mmap / ->get_unmapped_area. The fs
// layer (the vfio pseudo filesystem) derives the concrete files.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "base/addr.h"
#include "base/result.h"

namespace vfiomm {

class AddressSpace;
class Vma;

class File : public std::enable_shared_from_this<File> {
 public:
  virtual ~File() = default;

  // f_mapping: the address space whose i_mmap holds every VMA of this file.
  virtual AddressSpace* mapping() const = 0;
  virtual bool readable() const { return true; }  // FMODE_READ
  virtual bool writable() const { return true; }  // FMODE_WRITE
  // ->mmap(file, vma). Runs before the VMA is linked anywhere (mm-pfnmap §3).
  virtual Status mmap(Vma& vma) = 0;
  // f_op->mmap is set: do_mmap() refuses a file without one with -ENODEV,
  // after its own checks.
  virtual bool hasMmap() const { return true; }
  // ->get_unmapped_area, when the file has one; nullopt = use the mm's.
  virtual std::optional<Result<VirtAddr>> getUnmappedArea(VirtAddr, uint64_t, uint64_t, int) {
    return std::nullopt;
  }
  // mapping_can_be_shared_validate: MAP_SHARED_VALIDATE flags it supports.
  virtual int supportedMapFlags() const { return 0; }
  // path_noexec(&file->f_path): the file's mount or superblock forbids
  // execution, so do_mmap() drops VM_MAYEXEC and refuses PROT_EXEC.
  virtual bool pathNoexec() const { return false; }
  // huge_page_size(hstate_file()) of a hugetlbfs file; 0 for any other
  // file (is_file_hugepages() is false).
  virtual uint64_t hugePageSize() const { return 0; }
  // The page-cache page at page `index` of the file, allocated on first
  // use (a shmem or hugetlbfs file): what GUP pins through a VMA of the
  // file and what memfd_pin_folios() pins for IOMMU_IOAS_MAP_FILE. A file
  // without a page cache of its own (a device file) has none: -EINVAL, as
  // memfd_pin_folios() answers for it.
  virtual Result<Pfn> findOrAllocPage(uint64_t /*index*/) { return fail(Errno::kEINVAL); }
  // vfs_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) of `len`
  // bytes at `offset`, which MADV_REMOVE asks for. Only a regular file can
  // take it; a device's file or an anonymous inode is -ENODEV.
  virtual Status punchHole(uint64_t /*offset*/, uint64_t /*len*/) { return fail(Errno::kENODEV); }
};

}  // namespace vfiomm
