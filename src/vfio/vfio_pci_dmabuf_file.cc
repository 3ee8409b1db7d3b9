#include "vfio/vfio_pci_dmabuf_file.h"

#include "base/page_geometry.h"
#include "dmabuf/dma_buf.h"
#include "mm/pfn_insert.h"
#include "mm/vm_flags.h"
#include "mm/vma.h"
#include "sync/rw_semaphore.h"
#include "vfio/vfio_pci_core_device.h"
#include "vfio/vfio_pci_dmabuf.h"

namespace vfiomm {

VfioPciDmaBufFile::VfioPciDmaBufFile(std::shared_ptr<DmaBuf> dmabuf, std::string bufName,
                                     std::shared_ptr<File> deviceFile)
    : dmabuf_(std::move(dmabuf)),
      bufName_(std::move(bufName)),
      deviceFile_(std::move(deviceFile)) {}

VfioPciDmaBuf& VfioPciDmaBufFile::priv() const {
  return static_cast<VfioPciDmaBuf&>(dmabuf_->ops());
}

AddressSpace* VfioPciDmaBufFile::mapping() const { return &priv().mapping(); }

Status VfioPciDmaBufFile::mmap(Vma& vma) {
  // dma_buf_mmap_internal(): the exporter must have an mmap op (vfio's
  // has one only under the first proposal), and the range must lie inside
  // the buffer. do_mmap() has unmapped a MAP_FIXED range by now.
  if (!priv().hasMmap()) return fail(Errno::kEINVAL);
  if (vma.pgoff().value() + vma.pages() > dmabuf_->size() >> kPageShift)
    return fail(Errno::kEINVAL);
  return mmapBuffer(vma);
}

Status VfioPciDmaBufFile::mmapBuffer(Vma& vma) {
  if (priv().state() == VfioPciDmaBuf::State::kPermanentlyRevoked) return fail(Errno::kENODEV);
  // Shared only, as vfio_pci_core_mmap() insists: a private PFNMAP mapping
  // would be a COW mapping of MMIO.
  if (!(vma.flags() & vm::kShared)) return fail(Errno::kEINVAL);
  vma.setPageProt(pgprotNoncached(vma.pageProt()));
  vma.flagsSet(vm::kIo | vm::kPfnmap | vm::kDontExpand | vm::kDontDump);
  vma.setOps(this);
  return ok();
}

VmFaultResult VfioPciDmaBufFile::fault(VmFault& vmf) const {
  VfioPciDmaBuf& buf = priv();
  VfioPciCoreDevice* vdev = buf.device();
  if (vdev == nullptr) return vmfault::kSigbus;  // detached by the last close
  ReadGuard g(vdev->memoryLock());
  if (buf.revoked()) return vmfault::kSigbus;
  const std::optional<PhysAddr> pa = buf.physAt(vmf.pgoff.toBytes());
  if (!pa) return vmfault::kSigbus;
  return vmfInsertPfn(*vmf.vma, vmf.address, Pfn::fromPhys(*pa));
}

}  // namespace vfiomm
