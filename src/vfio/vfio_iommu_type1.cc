#include "vfio/vfio_iommu_type1.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "abi/vfio.h"
#include "base/counter.h"
#include "base/kernel_log.h"
#include "base/user_copy.h"
#include "mm/fault.h"
#include "mm/gup.h"
#include "mm/mm.h"
#include "mm/system_ram.h"
#include "mm/vma.h"
#include "sync/sched_hook.h"
#include "trace/tracer.h"
#include "vfio/vfio_info_cap.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(vaddrGetPfnsCounter, "vfio.type1.vaddr_get_pfns", "type1 vaddr_get_pfns() calls");
VFIOMM_COUNTER(type1ReschedCounter, "vfio.type1.cond_resched",
               "scheduling points of type1's pin loop (type1_resched)");
VFIOMM_COUNTER(type1FaultCounter, "vfio.type1.fixup_user_fault",
               "fixup_user_fault() calls made by MAP_DMA");

// The pin loop's batch: one page of page pointers (vfio_batch).
constexpr uint64_t kBatchPages = kPageSize / sizeof(void*);
// DIRTY_BITMAP_SIZE_MAX: the largest bitmap UNMAP_DMA/DIRTY_PAGES report.
constexpr uint64_t kMaxDirtyBitmapSize = uint64_t{256} << 20;

constexpr uint32_t kMapFlags =
    uapi::VFIO_DMA_MAP_FLAG_READ | uapi::VFIO_DMA_MAP_FLAG_WRITE | uapi::VFIO_DMA_MAP_FLAG_VADDR;
constexpr uint32_t kUnmapFlags = uapi::VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP |
                                 uapi::VFIO_DMA_UNMAP_FLAG_ALL | uapi::VFIO_DMA_UNMAP_FLAG_VADDR;

// The span of one MAP_DMA's pin-and-map, with the lookups it made: what
// decides how long a VM with a big BAR takes to boot (dma-mapping.md §6).
void traceMapDma(uint64_t begin, uint64_t iova, uint64_t size, uint64_t lookups, bool failed) {
  trace::Tracer& t = trace::Tracer::current();
  trace::TraceEvent e;
  e.kind = trace::EventKind::kDmaMap;
  e.ts = begin;
  e.dur = t.now() - begin;
  e.addr = iova;
  e.end = iova + size;
  e.value = lookups;
  e.flags = failed ? trace::eventflag::kFailed : 0;
  t.record(e);
}

// Whether [start, start + size) wraps the 64-bit space (size != 0).
bool wraps(uint64_t start, uint64_t size) { return start + size - 1 < start; }

}  // namespace

VfioIommuType1::VfioIommuType1(Iommu& iommu, SystemRam& ram, KernelLog& log,
                               const VfioProfile& profile, bool v2, const Type1Params& params)
    : iommu_(iommu),
      ram_(ram),
      log_(log),
      profile_(profile),
      v2_(v2),
      disableHugepages_(params.disableHugepages),
      domain_(iommu.allocDomain()),
      dmaAvail_(params.dmaEntryLimit) {}

VfioIommuType1::~VfioIommuType1() {
  MutexGuard g(lock_);
  while (!dmaList_.empty()) removeDma(dmaList_.begin()->second);
}

long VfioIommuType1::checkExtension(const VfioIommuType1* instance, unsigned long ext) {
  switch (ext) {
    case uapi::VFIO_TYPE1_IOMMU:
    case uapi::VFIO_TYPE1v2_IOMMU:
    case uapi::VFIO_UNMAP_ALL: return 1;
    case uapi::VFIO_DMA_CC_IOMMU:
      // Every domain of the model enforces cache coherency (VT-d snoop
      // control), so the answer is 1 as soon as there is an instance.
      return instance != nullptr ? 1 : 0;
    // No emulated (mdev) groups in the model: an instance always can.
    case uapi::VFIO_UPDATE_VADDR: return instance != nullptr ? 1 : 0;
    default: return 0;
  }
}

Status VfioIommuType1::mayAttachGroup() {
  MutexGuard g(lock_);
  return vaddrInvalidCount_ != 0 ? fail(Errno::kEBUSY) : ok();
}

void VfioIommuType1::attachDevice(const PciDevice& device) { iommu_.attachDevice(device, domain_); }

Type1Stats VfioIommuType1::stats() const {
  Type1Stats s;
  s.vaddrGetPfnsCalls = vaddrGetPfnsCalls_.load(std::memory_order_relaxed);
  s.faults = faults_.load(std::memory_order_relaxed);
  s.pinnedPages = pinnedPages_.load(std::memory_order_relaxed);
  s.condResched = condResched_.load(std::memory_order_relaxed);
  return s;
}

uint32_t VfioIommuType1::dmaAvail() {
  MutexGuard g(lock_);
  return dmaAvail_;
}

Result<long> VfioIommuType1::ioctl(unsigned long request, void* arg, const Type1Caller& caller) {
  switch (request) {
    case uapi::VFIO_IOMMU_GET_INFO: return getInfo(arg);
    case uapi::VFIO_IOMMU_MAP_DMA: return mapDma(arg, caller);
    case uapi::VFIO_IOMMU_UNMAP_DMA: return unmapDma(arg);
    default: return fail(Errno::kENOTTY);
  }
}

// --- GET_INFO ----------------------------------------------------------------

Result<long> VfioIommuType1::getInfo(void* arg) {
  uapi::vfio_iommu_type1_info info;
  constexpr uint32_t minsz = offsetof(uapi::vfio_iommu_type1_info, cap_offset);
  if (auto st = copyFromUser(&info, arg, minsz); !st) return fail(st.error());
  if (info.argsz < minsz) return fail(Errno::kEINVAL);
  const uint32_t copysz = std::min<uint32_t>(info.argsz, sizeof(info));
  if (auto st = copyFromUser(&info, arg, copysz); !st) return fail(st.error());

  info.flags = uapi::VFIO_IOMMU_INFO_PGSIZES;
  info.iova_pgsizes = domain_->pgsizeBitmap();
  VfioInfoCap caps;
  // The chain's order is the kernel's: migration, DMA avail, IOVA ranges.
  uapi::vfio_iommu_type1_info_cap_migration migration;
  migration.pgsize_bitmap = domain_->minPageSize();
  migration.max_dirty_bitmap_size = kMaxDirtyBitmapSize;
  caps.add(uapi::VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1, &migration.flags,
           sizeof(migration) - sizeof(migration.header));
  const uint32_t avail = dmaAvail();
  caps.add(uapi::VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, &avail, sizeof(avail));
  const std::vector<IovaRange> ranges = iommu_.validIovaRanges();
  if (!ranges.empty()) {
    std::vector<uint32_t> body(2 + 4 * ranges.size());
    body[0] = static_cast<uint32_t>(ranges.size());
    for (size_t i = 0; i < ranges.size(); ++i) {
      const uapi::vfio_iova_range r{ranges[i].start, ranges[i].last};
      std::memcpy(&body[2 + 4 * i], &r, sizeof(r));
    }
    caps.add(uapi::VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, body.data(),
             static_cast<uint32_t>(body.size() * sizeof(uint32_t)));
  }
  if (auto st = caps.copyOut(arg, sizeof(info), &info.argsz, &info.cap_offset, &info.flags,
                             uapi::VFIO_IOMMU_INFO_CAPS);
      !st)
    return fail(st.error());
  if (auto st = copyToUser(arg, &info, copysz); !st) return fail(st.error());
  return 0;
}

// --- MAP_DMA -----------------------------------------------------------------

Result<long> VfioIommuType1::mapDma(void* arg, const Type1Caller& caller) {
  uapi::vfio_iommu_type1_dma_map map;
  if (auto st = copyFromUser(&map, arg, sizeof(map)); !st) return fail(st.error());
  if (map.argsz < sizeof(map) || (map.flags & ~kMapFlags) != 0) return fail(Errno::kEINVAL);
  int prot = 0;
  if (map.flags & uapi::VFIO_DMA_MAP_FLAG_READ) prot |= iommuprot::kRead;
  if (map.flags & uapi::VFIO_DMA_MAP_FLAG_WRITE) prot |= iommuprot::kWrite;
  const bool setVaddr = (map.flags & uapi::VFIO_DMA_MAP_FLAG_VADDR) != 0;
  if (profile_.type1OverflowErrno) {
    if (map.size == 0) return fail(Errno::kEINVAL);
    if (wraps(map.iova, map.size) || wraps(map.vaddr, map.size)) return fail(Errno::kEOVERFLOW);
  }
  if ((prot == 0 && !setVaddr) || (prot != 0 && setVaddr)) return fail(Errno::kEINVAL);

  MutexGuard g(lock_);
  if (auto st = checkMap(map.iova, map.vaddr, map.size); !st) return fail(st.error());
  if (setVaddr) {
    if (auto st = updateVaddr(map.iova, map.vaddr, map.size, caller); !st) return fail(st.error());
    return 0;
  }
  if (findOverlapping(map.iova, map.size) != nullptr) return fail(Errno::kEEXIST);
  if (dmaAvail_ == 0) return fail(Errno::kENOSPC);
  if (!insideOneValidRange(map.iova, map.size)) return fail(Errno::kEINVAL);

  VfioDma dma;
  dma.iova = map.iova;
  dma.vaddr = map.vaddr;
  dma.size = map.size;
  dma.prot = prot;
  dma.mm = caller.mm.weak_from_this();
  dma.lockCap = caller.lockCap;
  const uint64_t traced = trace::enabled() ? trace::Tracer::current().now() : UINT64_MAX;
  const uint64_t lookupsBefore = vaddrGetPfnsCalls_.load(std::memory_order_relaxed);
  const Status pinned = pinMapDma(dma, caller);
  if (traced != UINT64_MAX)
    traceMapDma(traced, dma.iova, dma.size,
                vaddrGetPfnsCalls_.load(std::memory_order_relaxed) - lookupsBefore, !pinned);
  if (!pinned) return fail(pinned.error());
  dmaList_.emplace(dma.iova, dma);
  --dmaAvail_;
  return 0;
}

Status VfioIommuType1::checkMap(uint64_t iova, uint64_t vaddr, uint64_t size) {
  const uint64_t mask = domain_->minPageSize() - 1;
  // In the EOVERFLOW era size 0 and wraps never get here (refused earlier).
  if (size == 0 || ((size | iova | vaddr) & mask) != 0) return fail(Errno::kEINVAL);
  if (wraps(iova, size) || wraps(vaddr, size)) return fail(Errno::kEINVAL);
  return ok();
}

VfioIommuType1::VfioDma* VfioIommuType1::findOverlapping(uint64_t iova, uint64_t size) {
  auto it = dmaList_.lower_bound(iova);
  if (it != dmaList_.end() && it->first - iova < size) return &it->second;
  if (it == dmaList_.begin()) return nullptr;
  --it;
  return iova - it->second.iova < it->second.size ? &it->second : nullptr;
}

Status VfioIommuType1::updateVaddr(uint64_t iova, uint64_t vaddr, uint64_t size,
                                   const Type1Caller& caller) {
  VfioDma* dma = findOverlapping(iova, size);
  if (dma == nullptr) return fail(Errno::kENOENT);
  if (!dma->vaddrInvalid || dma->iova != iova || dma->size != size) return fail(Errno::kEINVAL);
  if (auto st = changeDmaOwner(*dma, caller); !st) return st;
  dma->vaddr = vaddr;
  dma->vaddrInvalid = false;
  --vaddrInvalidCount_;
  return ok();
}

Status VfioIommuType1::changeDmaOwner(VfioDma& dma, const Type1Caller& caller) {
  const std::shared_ptr<Mm> owner = dma.mm.lock();
  if (owner.get() == &caller.mm) return ok();
  // mm_lock_acct(): __account_locked_vm() against the caller's limit
  // unless it has CAP_IPC_LOCK, without the pin path's warning; nothing to
  // charge, nothing to check.
  if (dma.lockedPages != 0 && !caller.lockCap &&
      caller.mm.lockedVm() + dma.lockedPages > caller.memlockLimit / kPageSize)
    return fail(Errno::kENOMEM);
  caller.mm.addLockedVm(dma.lockedPages);
  if (owner != nullptr) owner->subLockedVm(dma.lockedPages);
  dma.mm = caller.mm.weak_from_this();
  dma.lockCap = caller.lockCap;
  return ok();
}

bool VfioIommuType1::insideOneValidRange(uint64_t iova, uint64_t size) const {
  const uint64_t last = iova + size - 1;
  for (const IovaRange& r : iommu_.validIovaRanges())
    if (iova >= r.start && last <= r.last) return true;
  return false;
}

Status VfioIommuType1::pinMapDma(VfioDma& dma, const Type1Caller& caller) {
  const uint64_t npages = dma.size / kPageSize;
  const bool write = (dma.prot & iommuprot::kWrite) != 0;
  uint64_t done = 0;
  std::optional<PfnRun> carried;  // looked up but not contiguous with the last chunk
  Status st = ok();
  while (done < npages && st) {
    // vfio_pin_pages_remote(): one chunk of physically contiguous pfns of
    // the same kind, then one iommu_map() for it; one page with
    // disable_hugepages.
    const uint64_t most = disableHugepages_ ? 1 : npages - done;
    Result<PfnRun> first = carried ? Result<PfnRun>(*carried)
                                   : refill(caller, dma.vaddr + done * kPageSize, most, write);
    carried.reset();
    if (!first) {
      st = fail(first.error());
      break;
    }
    uint64_t chunk = first->count;
    while (chunk < most) {
      Result<PfnRun> next =
          refill(caller, dma.vaddr + (done + chunk) * kPageSize, npages - done - chunk, write);
      if (!next) {
        st = fail(next.error());
        break;
      }
      if (next->pfn != first->pfn + chunk || next->reserved != first->reserved) {
        carried = *next;
        break;
      }
      chunk += next->count;
    }
    if (st && !first->reserved) {
      st = chargeLockedVm(dma, caller, chunk);
      if (st) dma.lockedPages += chunk;
    }
    if (st)
      st = domain_->map(dma.iova + done * kPageSize, first->pfn.toPhys(), chunk * kPageSize,
                        dma.prot | iommuprot::kCache);
    if (st) done += chunk;
  }
  if (!st) {
    // MAP_DMA is all or nothing: what was mapped and charged goes back.
    domain_->unmap(dma.iova, done * kPageSize);
    caller.mm.subLockedVm(dma.lockedPages);
    dma.lockedPages = 0;
    return st;
  }
  pinnedPages_.fetch_add(dma.lockedPages, std::memory_order_relaxed);
  return ok();
}

Status VfioIommuType1::chargeLockedVm(const VfioDma& dma, const Type1Caller& caller,
                                      uint64_t pages) {
  Mm& mm = caller.mm;
  const uint64_t limit = caller.memlockLimit / kPageSize;
  if (!dma.lockCap && mm.lockedVm() + pages > limit) {
    // The limit as the kernel holds it, in pages, printed back in bytes.
    log_.print(
        fmt::format("vfio_pin_pages_remote: RLIMIT_MEMLOCK ({}) exceeded", limit * kPageSize));
    return fail(Errno::kENOMEM);
  }
  mm.addLockedVm(pages);
  return ok();
}

Result<VfioIommuType1::PfnRun> VfioIommuType1::refill(const Type1Caller& caller, uint64_t vaddr,
                                                      uint64_t npages, bool write) {
  if (profile_.type1Resched) {
    // A large map refills the batch many times; since v6.17 it may give
    // up the CPU before each refill (§2.8). iommu->lock is a mutex, so
    // sleeping here is allowed.
    condResched_.fetch_add(1, std::memory_order_relaxed);
    type1ReschedCounter.add();
    schedPoint("vfio.type1.cond_resched");
  }
  return vaddrGetPfns(caller, vaddr, npages, write);
}

Result<VfioIommuType1::PfnRun> VfioIommuType1::vaddrGetPfns(const Type1Caller& caller,
                                                            uint64_t vaddr, uint64_t npages,
                                                            bool write) {
  vaddrGetPfnsCalls_.fetch_add(1, std::memory_order_relaxed);
  vaddrGetPfnsCounter.add();
  Mm& mm = caller.mm;
  for (;;) {
    Result<std::optional<PfnRun>> found = [&]() -> Result<std::optional<PfnRun>> {
      ReadGuard mmap(mm.mmapLock());
      const Vma* vma = mm.findVma(VirtAddr(vaddr));
      if (vma == nullptr) return fail(Errno::kEFAULT);
      if (!(vma->flags() & (vm::kIo | vm::kPfnmap))) {
        // FOLL_WRITE on a read-only VMA: GUP refuses it.
        if (write && !(vma->flags() & vm::kWrite)) return fail(Errno::kEFAULT);
        auto run = pinPages(mm, *vma, vaddr,
                            std::min(npages, vma->end().value() / kPageSize - vaddr / kPageSize));
        if (!run) return fail(run.error());
        return std::optional<PfnRun>(*run);
      }
      // GUP refuses VM_IO|VM_PFNMAP without faulting; only a PFNMAP VMA
      // gets the follow/fault path.
      if (!(vma->flags() & vm::kPfnmap)) return fail(Errno::kEFAULT);
      return followPfnmap(mm, vaddr, npages, write);
    }();
    if (!found) return fail(found.error());
    if (*found) return **found;
    // Absent: fault it in as a CPU access would, through the VMA's own
    // handler. The model's fixup_user_fault() takes the mmap lock itself,
    // so this is the "lock was dropped" path: look the VMA up again.
    faults_.fetch_add(1, std::memory_order_relaxed);
    type1FaultCounter.add();
    if (auto st = fixupUserFault(caller.task, mm, VirtAddr(vaddr), write ? faultflag::kWrite : 0);
        !st)
      return fail(st.error());
  }
}

Result<VfioIommuType1::PfnRun> VfioIommuType1::pinPages(Mm& mm, const Vma& vma, uint64_t vaddr,
                                                        uint64_t npages) {
  // pin_user_pages_remote() fills one batch; the run is its physically
  // contiguous prefix.
  auto first = pinUserPage(mm, vma, VirtAddr(vaddr), ram_);
  if (!first) return fail(first.error());
  PfnRun run{*first, 1, false};
  const uint64_t want = std::min(npages, kBatchPages);
  while (run.count < want) {
    auto next = pinUserPage(mm, vma, VirtAddr(vaddr + run.count * kPageSize), ram_);
    if (!next) return fail(next.error());
    if (*next != run.pfn + run.count) break;
    ++run.count;
  }
  return run;
}

Result<std::optional<VfioIommuType1::PfnRun>> VfioIommuType1::followPfnmap(Mm& mm, uint64_t vaddr,
                                                                           uint64_t npages,
                                                                           bool write) {
  // follow_pte()/follow_pfnmap_start() read the entry under its PTL; the
  // model reads it atomically, which gives the same before-or-after answer
  // against a concurrent zap.
  const PageTable::Translation t = mm.pageTable().translate(VirtAddr(vaddr));
  if (!t.present) return std::optional<PfnRun>();
  // follow_pte() walks to a PTE only: a PMD or PUD leaf fails it (-EINVAL),
  // which is why the huge pfnmap series converted vfio to follow_pfnmap.
  if (t.level != PtLevel::kPte && profile_.type1PfnLookup == Type1PfnLookup::kFollowPte)
    return fail(Errno::kEINVAL);
  if (write && !pte::isWritable(t.entry)) return fail(Errno::kEFAULT);
  // A pfn with a non-reserved struct page is ordinary RAM: refused.
  if (ram_.contains(t.pfn)) return fail(Errno::kEFAULT);
  PfnRun run{t.pfn, 1, true};
  if (profile_.type1PfnLookup == Type1PfnLookup::kFollowPfnmapLeafStride) {
    // addr_mask: the rest of the leaf in one step (0fd06844de5d, v6.15).
    const uint64_t leaf = levelSize(t.level);
    const uint64_t toLeafEnd = (leaf - (vaddr & (leaf - 1))) / kPageSize;
    run.count = std::min(npages, toLeafEnd);
  }
  return std::optional<PfnRun>(run);
}

// --- UNMAP_DMA ---------------------------------------------------------------

Result<long> VfioIommuType1::unmapDma(void* arg) {
  uapi::vfio_iommu_type1_dma_unmap unmap;
  if (auto st = copyFromUser(&unmap, arg, sizeof(unmap)); !st) return fail(st.error());
  if (unmap.argsz < sizeof(unmap) || (unmap.flags & ~kUnmapFlags) != 0) return fail(Errno::kEINVAL);
  const uint32_t dirty = unmap.flags & uapi::VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
  if (dirty && (unmap.flags & (uapi::VFIO_DMA_UNMAP_FLAG_ALL | uapi::VFIO_DMA_UNMAP_FLAG_VADDR)))
    return fail(Errno::kEINVAL);
  // Dirty tracking never starts in the model, and the kernel refuses a
  // bitmap request without it.
  if (dirty) return fail(Errno::kEINVAL);

  uint64_t removed = 0;
  {
    MutexGuard g(lock_);
    auto r = checkUnmap(unmap.iova, unmap.size, unmap.flags);
    if (!r) return fail(r.error());
    removed = *r;
  }
  unmap.size = removed;
  if (auto st = copyToUser(arg, &unmap, sizeof(unmap)); !st) return fail(st.error());
  return 0;
}

Result<uint64_t> VfioIommuType1::checkUnmap(uint64_t iova, uint64_t size, uint32_t flags) {
  const uint64_t mask = domain_->minPageSize() - 1;
  const bool all = (flags & uapi::VFIO_DMA_UNMAP_FLAG_ALL) != 0;
  if ((iova & mask) != 0) return fail(Errno::kEINVAL);
  if (all) {
    if (iova != 0 || size != 0) return fail(Errno::kEINVAL);
    size = ~uint64_t{0};
  } else {
    if (size == 0 || (size & mask) != 0) return fail(Errno::kEINVAL);
    if (wraps(iova, size))
      return fail(profile_.type1OverflowErrno ? Errno::kEOVERFLOW : Errno::kEINVAL);
  }
  const uint64_t last = all ? ~uint64_t{0} : iova + size - 1;
  if (v2_ && !all) {
    // v2 refuses to cut a mapping: neither end may fall inside one.
    const VfioDma* head = findOverlapping(iova, 1);
    if (head != nullptr && head->iova < iova) return fail(Errno::kEINVAL);
    const VfioDma* tail = findOverlapping(last, 1);
    if (tail != nullptr && tail->iova + tail->size - 1 > last) return fail(Errno::kEINVAL);
  }
  // v1 stops at a mapping that starts before `iova` (it is found first).
  if (const VfioDma* first = findOverlapping(iova, 1);
      !v2_ && first != nullptr && first->iova < iova)
    return 0;
  if (flags & uapi::VFIO_DMA_UNMAP_FLAG_VADDR) return invalidateVaddr(iova, last);
  uint64_t removed = 0;
  for (auto it = dmaList_.lower_bound(iova); it != dmaList_.end() && it->first <= last;) {
    const VfioDma dma = it->second;
    ++it;
    removed += removeDma(dma);
  }
  return removed;
}

Result<uint64_t> VfioIommuType1::invalidateVaddr(uint64_t iova, uint64_t last) {
  std::vector<VfioDma*> marked;
  uint64_t invalidated = 0;
  for (auto it = dmaList_.lower_bound(iova); it != dmaList_.end() && it->first <= last; ++it) {
    VfioDma& dma = it->second;
    if (dma.vaddrInvalid) {
      for (VfioDma* m : marked) m->vaddrInvalid = false;
      vaddrInvalidCount_ -= static_cast<uint32_t>(marked.size());
      return fail(Errno::kEINVAL);
    }
    dma.vaddrInvalid = true;
    ++vaddrInvalidCount_;
    marked.push_back(&dma);
    invalidated += dma.size;
  }
  return invalidated;
}

uint64_t VfioIommuType1::removeDma(const VfioDma& dma) {
  // vfio_unmap_unpin(): the first domain is walked with one
  // iommu_iova_to_phys() per page to find physically contiguous runs.
  const uint64_t end = dma.iova + dma.size;
  for (uint64_t iova = dma.iova; iova < end;) {
    const std::optional<PhysAddr> phys = domain_->iovaToPhys(iova);
    if (!phys) {
      iova += kPageSize;
      continue;
    }
    uint64_t len = kPageSize;
    while (iova + len < end && domain_->iovaToPhys(iova + len) == *phys + len) len += kPageSize;
    domain_->unmap(iova, len);
    iova += len;
  }
  if (std::shared_ptr<Mm> mm = dma.mm.lock()) mm->subLockedVm(dma.lockedPages);
  pinnedPages_.fetch_sub(dma.lockedPages, std::memory_order_relaxed);
  if (dma.vaddrInvalid) --vaddrInvalidCount_;
  ++dmaAvail_;
  const uint64_t size = dma.size;
  dmaList_.erase(dma.iova);
  return size;
}

}  // namespace vfiomm
