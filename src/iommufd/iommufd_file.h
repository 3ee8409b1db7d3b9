// IommufdFile: the file /dev/iommu opens (iommufd_fops) on a kernel whose
// iommufd has ->mmap (IommufdProfile::mmap; before it, the file is a
// FileWithoutMmap). iommufd_fops_mmap (v6.17) maps the MMIO page a driver
// registered in the context's mt_mmap tree for a vIOMMU's hardware queue.
// The model has no driver that registers one, so the tree is empty and
// every mapping that passes the checks before the lookup finds nothing:
// -ENXIO.
#pragma once

#include "base/errno.h"
#include "mm/file.h"
#include "mm/vm_flags.h"
#include "mm/vma.h"

namespace vfiomm {

class IommufdFile final : public File {
 public:
  IommufdFile(bool readable, bool writable) : readable_(readable), writable_(writable) {}

  AddressSpace* mapping() const override { return nullptr; }
  bool readable() const override { return readable_; }
  bool writable() const override { return writable_; }
  // The length is page aligned by the time do_mmap() gets here, so the
  // first check that can fail is the sharing one.
  Status mmap(Vma& vma) override {
    if (!(vma.flags() & vm::kShared)) return fail(Errno::kEINVAL);
    if (vma.flags() & vm::kExec) return fail(Errno::kEPERM);
    return fail(Errno::kENXIO);  // mtree_load(&ictx->mt_mmap, ...) found no immap
  }

 private:
  const bool readable_;
  const bool writable_;
};

}  // namespace vfiomm
