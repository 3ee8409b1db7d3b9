// VfioPciDmaBufFile: a vfio dma-buf's file as mm sees it when it is
// mmapped — a PROPOSAL, not merged (Matt Evans, 2026; dma-mapping.md §4.4;
// DesignOptions::proposalDmabufMmapRevoke). The merged dma-buf has no mmap
// op (mmap of its fd is -EINVAL).
//
// The mapping is VM_IO|VM_PFNMAP over the buffer's BAR ranges; a fault
// inserts the 4 KiB pfn while the buffer is usable and SIGBUSes while it is
// revoked, holding the device's memory_lock for read across the check and
// the insert as a BAR fault does, so that a revoke (memory_lock written,
// then the zap of the buffer's address space) leaves no entry behind. A
// permanently revoked buffer cannot be mapped (-ENODEV). The file holds the
// buffer, as a VMA's vm_file holds the dma-buf, so the buffer outlives its
// fd while a mapping exists.
//
// The second proposal (DesignOptions::proposalBarMmapDmabuf) makes the same
// file the vm_file of a BAR mmap of the device fd: the buffer is then named
// after the device and the BAR, and the file keeps the device fd's file
// open, as the device fd's own VMA would.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "mm/file.h"
#include "mm/vm_operations.h"

namespace vfiomm {

class DmaBuf;
class VfioPciDmaBuf;

class VfioPciDmaBufFile : public File, public VmOperations {
 public:
  explicit VfioPciDmaBufFile(std::shared_ptr<DmaBuf> dmabuf, std::string bufName = {},
                             std::shared_ptr<File> deviceFile = nullptr);

  // What /proc/pid/maps prints for the file: dmabuffs_dname()'s
  // "/dmabuf:" and the buffer's name (empty unless the exporter set one).
  std::string path() const { return "/dmabuf:" + bufName_; }

  // File: the buffer's address space; dma_buf_mmap_internal()'s checks,
  // then the exporter's mmap.
  AddressSpace* mapping() const override;
  Status mmap(Vma& vma) override;
  // The exporter's mmap op alone: what the second proposal's BAR mmap
  // calls for a buffer exported for the whole BAR.
  Status mmapBuffer(Vma& vma);

  // VmOperations.
  bool hasFault() const override { return true; }
  VmFaultResult fault(VmFault& vmf) const override;
  std::string_view name() const override { return "vfio_pci_dma_buf"; }

 private:
  VfioPciDmaBuf& priv() const;

  const std::shared_ptr<DmaBuf> dmabuf_;
  const std::string bufName_;
  const std::shared_ptr<File> deviceFile_;
};

}  // namespace vfiomm
