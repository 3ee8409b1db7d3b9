// A file whose file_operations have no ->mmap: an eventfd, the vfio
// container and group files, /proc/pid/mem, iommufd. mmap(2) of one gets
// through every check of do_mmap() before its -ENODEV, so the file takes
// part in them with the mode it was opened with.
#pragma once

#include "base/errno.h"
#include "mm/file.h"

namespace vfiomm {

class FileWithoutMmap final : public File {
 public:
  FileWithoutMmap(bool readable, bool writable) : readable_(readable), writable_(writable) {}

  AddressSpace* mapping() const override { return nullptr; }
  bool readable() const override { return readable_; }
  bool writable() const override { return writable_; }
  bool hasMmap() const override { return false; }
  // do_mmap() never calls it.
  Status mmap(Vma& /*vma*/) override { return fail(Errno::kENODEV); }

 private:
  const bool readable_;
  const bool writable_;
};

}  // namespace vfiomm
