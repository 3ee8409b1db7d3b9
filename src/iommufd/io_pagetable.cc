#include "iommufd/io_pagetable.h"

#include <algorithm>
#include <bit>

#include "base/page_geometry.h"
#include "mm/file.h"
#include "mm/gup.h"
#include "mm/mm.h"
#include "mm/system_ram.h"
#include "mm/user_struct.h"
#include "mm/vma.h"

namespace vfiomm {

namespace {

// The IOAS alignment: the smallest IOPTE every domain offers.
constexpr uint64_t kIovaAlignment = kPageSize;

}  // namespace

IoPagetable::IoPagetable(Iommu& iommu, SystemRam& ram) : iommu_(iommu), ram_(ram) {}

IoPagetable::~IoPagetable() { unmapAll(); }

Result<uint64_t> IoPagetable::mapUserPages(const IoptSource& source, uint64_t userVa,
                                           uint64_t length, uint64_t iova, bool fixedIova,
                                           int prot) {
  // iopt_alloc_user_pages() first: the user range itself.
  if (length == 0) return fail(Errno::kEINVAL);
  if (userVa + length < userVa) return fail(Errno::kEOVERFLOW);
  return mapArea(Area{.iova = iova,
                      .length = length,
                      .userVa = userVa,
                      .prot = prot,
                      .source = Source::kUser,
                      .mm = source.mm.weak_from_this(),
                      .user = &source.user,
                      .accountUser = !source.lockCap,
                      .memlockLimit = source.memlockLimit},
                 userVa, fixedIova);
}

Result<uint64_t> IoPagetable::mapFilePages(const IoptSource& source, std::shared_ptr<File> file,
                                           uint64_t start, uint64_t length, uint64_t iova,
                                           bool fixedIova, int prot) {
  return mapArea(Area{.iova = iova,
                      .length = length,
                      .userVa = start,
                      .prot = prot,
                      .source = Source::kFile,
                      .mm = source.mm.weak_from_this(),
                      .file = std::move(file),
                      .user = &source.user,
                      .accountUser = !source.lockCap,
                      .memlockLimit = source.memlockLimit},
                 start, fixedIova);
}

Result<uint64_t> IoPagetable::mapDmabufPages(std::shared_ptr<IoptDmabufPages> pages, uint64_t start,
                                             uint64_t length, uint64_t iova, bool fixedIova,
                                             int prot) {
  return mapArea(Area{.iova = iova,
                      .length = length,
                      .prot = prot,
                      .source = Source::kDmabuf,
                      .dmabuf = std::move(pages)},
                 start, fixedIova);
}

Result<uint64_t> IoPagetable::mapArea(Area area, uint64_t alignSource, bool fixedIova) {
  if (area.length % kIovaAlignment != 0) return fail(Errno::kEINVAL);
  MutexGuard g(lock_);
  if (fixedIova) {
    if (auto st = checkFixedIova(area.iova, area.length); !st) return fail(st.error());
  } else {
    auto chosen = allocIova(alignSource, area.length);
    if (!chosen) return fail(chosen.error());
    area.iova = *chosen;
  }
  for (size_t i = 0; i < domains_.size(); ++i) {
    if (auto st = fillArea(*domains_[i], area); !st) {
      // The domains filled so far lose the area again: nothing is mapped.
      for (size_t j = 0; j < i; ++j) unfillArea(*domains_[j], area);
      return fail(st.error());
    }
  }
  // Filled means pinned: charged now, or unfilled again.
  if (!domains_.empty()) {
    if (auto st = chargePins(area); !st) {
      for (auto& d : domains_) unfillArea(*d, area);
      return fail(st.error());
    }
  }
  const uint64_t iova = area.iova;
  areas_.emplace(iova, std::move(area));
  return iova;
}

Status IoPagetable::checkFixedIova(uint64_t iova, uint64_t length) {
  if (iova % kIovaAlignment != 0) return fail(Errno::kEINVAL);
  if (iova + (length - 1) < iova) return fail(Errno::kEOVERFLOW);
  if (isReserved(iova, length)) return fail(Errno::kEINVAL);
  if (!isFree(iova, length)) return fail(Errno::kEEXIST);
  return ok();
}

Result<uint64_t> IoPagetable::allocIova(uint64_t userVa, uint64_t length) {
  // Aligned to the length's power of two, but no more than the user
  // address is, so that huge pages can line up with huge IOPTEs.
  uint64_t align = std::bit_ceil(length);
  if (length > kPageSize && userVa != 0)
    align = std::min(align, uint64_t{1} << std::countr_zero(userVa));
  align = std::max(align, kIovaAlignment);
  for (const IovaRange& r : iommu_.validIovaRanges()) {
    uint64_t iova = roundUp(r.start, align);
    while (iova >= r.start && iova <= r.last && r.last - iova >= length - 1) {
      auto next = areas_.lower_bound(iova);
      if (next != areas_.begin()) {
        auto prev = std::prev(next);
        if (iova - prev->first < prev->second.length) {
          iova = roundUp(prev->first + prev->second.length, align);
          continue;
        }
      }
      if (next == areas_.end() || next->first - iova >= length) return iova;
      iova = roundUp(next->first + next->second.length, align);
    }
  }
  return fail(Errno::kENOSPC);
}

bool IoPagetable::isFree(uint64_t iova, uint64_t length) const {
  auto it = areas_.lower_bound(iova);
  if (it != areas_.end() && it->first - iova < length) return false;
  if (it == areas_.begin()) return true;
  --it;
  return iova - it->first >= it->second.length;
}

bool IoPagetable::isReserved(uint64_t iova, uint64_t length) const {
  const uint64_t last = iova + length - 1;
  for (const IovaRange& r : iommu_.validIovaRanges())
    if (iova >= r.start && last <= r.last) return false;
  return true;
}

Result<uint64_t> IoPagetable::unmapIova(uint64_t iova, uint64_t length) {
  if (length == 0) return fail(Errno::kEINVAL);
  const uint64_t last = iova + (length - 1);
  if (last < iova) return fail(Errno::kEOVERFLOW);
  Released released;
  MutexGuard g(lock_);
  // The areas go in IOVA order; one only partly inside the range stops the
  // walk with -ENOENT, leaving those before it unmapped.
  uint64_t removed = 0;
  auto it = areas_.lower_bound(iova);
  if (it != areas_.begin() && iova - std::prev(it)->first < std::prev(it)->second.length) --it;
  while (it != areas_.end() && it->first <= last) {
    const Area& a = it->second;
    if (a.iova < iova || a.iova + (a.length - 1) > last) return fail(Errno::kENOENT);
    unfillDomains(a);
    removed += a.length;
    released.push_back(a.dmabuf);
    it = areas_.erase(it);
  }
  return removed;
}

uint64_t IoPagetable::unmapAll() {
  Released released;
  MutexGuard g(lock_);
  uint64_t removed = 0;
  for (const auto& [iova, a] : areas_) {
    unfillDomains(a);
    removed += a.length;
    released.push_back(a.dmabuf);
  }
  areas_.clear();
  return removed;
}

Status IoPagetable::addDomain(std::shared_ptr<IommuDomain> domain) {
  MutexGuard g(lock_);
  // The first domain pins the areas' pages, so it charges them.
  const bool pins = domains_.empty();
  for (auto it = areas_.begin(); it != areas_.end(); ++it) {
    Status st = fillArea(*domain, it->second);
    if (st && pins) {
      st = chargePins(it->second);
      if (!st) unfillArea(*domain, it->second);
    }
    if (!st) {
      for (auto done = areas_.begin(); done != it; ++done) {
        unfillArea(*domain, done->second);
        if (pins) unchargePins(done->second);
      }
      return st;
    }
  }
  domains_.push_back(std::move(domain));
  return ok();
}

void IoPagetable::removeDomain(const IommuDomain& domain) {
  MutexGuard g(lock_);
  auto it = std::find_if(domains_.begin(), domains_.end(),
                         [&](const auto& d) { return d.get() == &domain; });
  if (it == domains_.end()) return;
  for (const auto& [iova, a] : areas_) unfillArea(**it, a);
  domains_.erase(it);
  // The last domain gone, nothing holds the pages pinned.
  if (domains_.empty())
    for (const auto& [iova, a] : areas_) unchargePins(a);
}

bool IoPagetable::hasDomains() {
  MutexGuard g(lock_);
  return !domains_.empty();
}

Status IoPagetable::disableLargePages() {
  MutexGuard g(lock_);
  if (disableLargePages_) return ok();
  // IOPTEs already in a domain may be large and could not be cut.
  if (!domains_.empty() && !areas_.empty()) return fail(Errno::kEINVAL);
  disableLargePages_ = true;
  return ok();
}

bool IoPagetable::largePagesDisabled() {
  MutexGuard g(lock_);
  return disableLargePages_;
}

Status IoPagetable::cutAfter(uint64_t iova) {
  MutexGuard g(lock_);
  auto it = areas_.upper_bound(iova);
  if (it == areas_.begin()) return ok();
  --it;
  Area& a = it->second;
  const uint64_t last = a.iova + (a.length - 1);
  if (iova >= last) return ok();
  if (a.source == Source::kDmabuf) return fail(Errno::kEINVAL);
  // Both halves keep their IOPTEs: with large pages off they are all
  // PAGE_SIZE, so no IOPTE straddles the cut.
  if ((iova + 1) % kIovaAlignment != 0) return fail(Errno::kEINVAL);
  Area tail = a;
  const uint64_t head = iova + 1 - a.iova;
  a.length = head;
  tail.iova = iova + 1;
  tail.userVa = a.userVa + head;
  tail.length = last - iova;
  areas_.emplace(tail.iova, std::move(tail));
  return ok();
}

uint64_t IoPagetable::pgsizeBitmap() {
  MutexGuard g(lock_);
  uint64_t bitmap = ~uint64_t{0};
  for (const auto& d : domains_) bitmap &= d->pgsizeBitmap();
  if ((bitmap & (kPageSize - 1)) != 0) bitmap = (bitmap & ~(kPageSize - 1)) | kPageSize;
  return std::max(bitmap, kIovaAlignment);
}

std::vector<IovaRange> IoPagetable::iovaHoles() const { return iommu_.validIovaRanges(); }

Status IoPagetable::fillArea(IommuDomain& domain, const Area& area) {
  if (area.source != Source::kDmabuf) return fillDomain(domain, area);
  return area.dmabuf->fillDomain(domain, area.iova, area.length, area.prot | iommuprot::kCache);
}

void IoPagetable::unfillDomains(const Area& area) {
  for (auto& d : domains_) unfillArea(*d, area);
  if (!domains_.empty()) unchargePins(area);
}

void IoPagetable::unfillArea(IommuDomain& domain, const Area& area) {
  if (area.source != Source::kDmabuf) {
    domain.unmap(area.iova, area.length);
    return;
  }
  area.dmabuf->unfillDomain(domain, area.iova, area.length);
}

Status IoPagetable::fillDomain(IommuDomain& domain, const Area& area) {
  std::shared_ptr<Mm> mm;
  if (area.source == Source::kUser) {
    mm = area.mm.lock();
    if (mm == nullptr) return fail(Errno::kEFAULT);  // the mm is gone: nothing to pin
  }
  const uint64_t npages = area.length / kPageSize;
  uint64_t done = 0;
  Status st = ok();
  // One iommu_map() per physically contiguous run, as the batch fill does.
  while (done < npages && st) {
    auto first = pinAreaPage(area, mm.get(), done);
    if (!first) {
      st = fail(first.error());
      break;
    }
    uint64_t run = 1;
    while (done + run < npages) {
      auto next = pinAreaPage(area, mm.get(), done + run);
      if (!next || *next != *first + run) break;
      ++run;
    }
    st = mapRun(domain, area.iova + done * kPageSize, first->toPhys(), run * kPageSize,
                area.prot | iommuprot::kCache);
    if (st) done += run;
  }
  if (!st) domain.unmap(area.iova, done * kPageSize);
  return st;
}

Result<Pfn> IoPagetable::pinAreaPage(const Area& area, Mm* mm, uint64_t index) {
  const uint64_t first = area.userVa / kPageSize;
  if (area.source == Source::kUser)
    return pinPage(*mm, (first + index) * kPageSize, (area.prot & iommuprot::kWrite) != 0);
  // memfd_pin_folios(): only a shmem or hugetlbfs file has pages to pin.
  if (area.file == nullptr) return fail(Errno::kEINVAL);
  return area.file->findOrAllocPage(first + index);
}

Status IoPagetable::mapRun(IommuDomain& domain, uint64_t iova, PhysAddr phys, uint64_t length,
                           int prot) {
  if (!disableLargePages_) return domain.map(iova, phys, length, prot);
  // batch_iommu_map_small(): one iommu_map() per page.
  for (uint64_t off = 0; off < length; off += kPageSize) {
    if (auto st = domain.map(iova + off, phys + off, kPageSize, prot); !st) {
      domain.unmap(iova, off);
      return st;
    }
  }
  return ok();
}

Status IoPagetable::chargePins(const Area& area) {
  if (area.source == Source::kDmabuf) return ok();  // nothing pinned
  const uint64_t pages = area.length / kPageSize;
  if (area.accountUser && !area.user->tryChargeLockedVm(pages, area.memlockLimit / kPageSize))
    return fail(Errno::kENOMEM);
  if (std::shared_ptr<Mm> mm = area.mm.lock()) mm->addPinnedVm(pages);
  return ok();
}

void IoPagetable::unchargePins(const Area& area) {
  if (area.source == Source::kDmabuf) return;
  const uint64_t pages = area.length / kPageSize;
  if (area.accountUser) area.user->unchargeLockedVm(pages);
  if (std::shared_ptr<Mm> mm = area.mm.lock()) mm->subPinnedVm(pages);
}

Result<Pfn> IoPagetable::pinPage(Mm& mm, uint64_t va, bool write) {
  ReadGuard mmap(mm.mmapLock());
  const Vma* vma = mm.findVma(VirtAddr(va));
  // GUP refuses what has no struct pages (VM_IO|VM_PFNMAP: a BAR mmap)
  // and, with FOLL_WRITE, a read-only VMA.
  if (vma == nullptr || (vma->flags() & (vm::kIo | vm::kPfnmap)) != 0) return fail(Errno::kEFAULT);
  if (write && !(vma->flags() & vm::kWrite)) return fail(Errno::kEFAULT);
  return pinUserPage(mm, *vma, VirtAddr(va), ram_);
}

}  // namespace vfiomm
