// IoPagetable: the IOVA space of one iommufd IOAS (struct io_pagetable,
// drivers/iommu/iommufd/io_pagetable.c): the areas user space mapped, each
// an IOVA range backed by a range of the caller's virtual memory, and the
// IOMMU domains of the devices attached to the IOAS, which mirror every
// area in their IOPTEs (dma-mapping.md §3.1).
//
// An area's pages are resolved only when a domain needs them: with no
// domain, IOAS_MAP only records the user range (a lazy reference), and the
// first domain added pins and maps all of them. Pinning is GUP's
// pin_user_pages(): anonymous memory only; a VM_IO|VM_PFNMAP VMA such as a
// vfio BAR mmap fails with -EFAULT (§3.2, no follow_pfn path as in type1).
// An area mapped from a dma-buf (IOMMU_IOAS_MAP_FILE, v6.19, §4.3) has no
// user range: its IoptDmabufPages give the physical range, pin nothing,
// and unmap its IOPTEs when the exporter revokes the buffer. An area mapped
// from any other file (MAP_FILE of a memfd, v6.13) pins the file's pages
// (memfd_pin_folios(): shmem or hugetlbfs only, -EINVAL for other files).
//
// Modelled simplifications: the host has one IOMMU, so its aperture and
// reserved MSI window (Iommu::validIovaRanges()) bound every IOAS from the
// start instead of arriving with the first device; the IOVA alignment is
// the smallest IOPTE size (4 KiB).
//
// Pins are accounted as iopt_pages accounts them (the model has no
// IOMMU_OPTION_RLIMIT_MODE): while an area's pages are pinned — it is in at
// least one domain — they are counted in the source mm's pinned_vm
// (do_update_pinned()) and, unless the mapping task had CAP_IPC_LOCK
// (IOPT_PAGES_ACCOUNT_NONE), charged to the mapping user's locked_vm
// within the task's RLIMIT_MEMLOCK (IOPT_PAGES_ACCOUNT_USER, -ENOMEM
// beyond it). A dma-buf area pins nothing and is not accounted. The
// kernel asks capable() at the map but reads the rlimit when it pins; the
// model keeps the rlimit the task had at the map, which differs only after
// a setrlimit in between.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "base/addr.h"
#include "base/result.h"
#include "iommu/iommu.h"
#include "iommufd/iopt_dmabuf_pages.h"
#include "sync/mutex.h"

namespace vfiomm {

class File;
class Mm;
class SystemRam;
class UserStruct;

// What iopt_alloc_pages() takes from `current` for a map: the mm whose
// memory a user area maps (and whose pinned_vm counts the pins), the user
// whose locked_vm is charged, and the task's RLIMIT_MEMLOCK in bytes.
struct IoptSource {
  Mm& mm;
  UserStruct& user;
  uint64_t memlockLimit = 0;
  bool lockCap = false;  // capable(CAP_IPC_LOCK)
};

// iopt->iova_rwsem: an rwsem in the kernel (lookups take it for read);
// exclusive here, as nothing in the model reads areas concurrently.
inline const LockClass kIoptIovaLockClass{"&iopt->iova_rwsem"};

class IoPagetable {
 public:
  IoPagetable(Iommu& iommu, SystemRam& ram);
  // iopt_destroy_table(): every area is unmapped from every domain.
  ~IoPagetable();
  IoPagetable(const IoPagetable&) = delete;
  IoPagetable& operator=(const IoPagetable&) = delete;

  // iopt_map_user_pages(): maps `length` bytes of the source's mm at
  // `userVa` to `iova` (`fixedIova`) or to an IOVA chosen here; returns the
  // IOVA. -ENOMEM: pinning the pages would pass RLIMIT_MEMLOCK.
  Result<uint64_t> mapUserPages(const IoptSource& source, uint64_t userVa, uint64_t length,
                                uint64_t iova, bool fixedIova, int prot) EXCLUDES(lock_);
  // The IOAS part of iopt_map_file_pages() for a dma-buf: `pages` (bytes
  // from `start` of the buffer) at `iova` or at an IOVA chosen here. The
  // caller keeps its reference to `pages` until this returns, so a failed
  // map does not release them (and detach) under the IOAS lock.
  Result<uint64_t> mapDmabufPages(std::shared_ptr<IoptDmabufPages> pages, uint64_t start,
                                  uint64_t length, uint64_t iova, bool fixedIova, int prot)
      EXCLUDES(lock_);
  // The IOAS part of iopt_map_file_pages() for a file that is not a
  // dma-buf: `length` bytes of `file` from `start` at `iova` or at an IOVA
  // chosen here. `file` null: an open file the model keeps no File for,
  // which has no pages to pin. Accounted as a user range is.
  Result<uint64_t> mapFilePages(const IoptSource& source, std::shared_ptr<File> file,
                                uint64_t start, uint64_t length, uint64_t iova, bool fixedIova,
                                int prot) EXCLUDES(lock_);
  // iopt_unmap_iova(): removes the areas inside [iova, iova + length);
  // returns the bytes removed, 0 when there are none (afb47765f923 moved
  // native IOAS_UNMAP's -ENOENT for that to the ioctl); -ENOENT for an
  // area only partly inside.
  Result<uint64_t> unmapIova(uint64_t iova, uint64_t length) EXCLUDES(lock_);
  // iopt_unmap_all(): every area; 0 bytes when there is none.
  uint64_t unmapAll() EXCLUDES(lock_);

  // iopt_table_add_domain(): `domain` gets IOPTEs for every area, pinning
  // their pages now (and charging them, when it is the first domain); on
  // failure it is left empty and not added.
  Status addDomain(std::shared_ptr<IommuDomain> domain) EXCLUDES(lock_);
  // iopt_table_remove_domain(): its IOPTEs are removed; off the last
  // domain, the pages are unpinned and uncharged.
  void removeDomain(const IommuDomain& domain) EXCLUDES(lock_);
  bool hasDomains() EXCLUDES(lock_);

  // iopt_disable_large_pages(): from now on every area is mapped with
  // PAGE_SIZE IOPTEs, so any of them can be cut. -EINVAL once a domain
  // already holds IOPTEs of an area.
  Status disableLargePages() EXCLUDES(lock_);
  bool largePagesDisabled() EXCLUDES(lock_);
  // iopt_cut_iova() at one point: the user area containing `iova` is split
  // so that one piece ends at `iova`; nothing when no area contains it or
  // one already ends there. -EINVAL to cut a dma-buf area.
  Status cutAfter(uint64_t iova) EXCLUDES(lock_);
  // The IOPTE sizes every domain offers (all of them without a domain),
  // sizes below a page folded into it, as the vfio compat GET_INFO says.
  uint64_t pgsizeBitmap() EXCLUDES(lock_);
  // The IOVA ranges outside every reserved one, lowest first.
  std::vector<IovaRange> iovaHoles() const;

 private:
  // iopt_pages->type.
  enum class Source { kUser, kFile, kDmabuf };
  struct Area {
    uint64_t iova = 0;
    uint64_t length = 0;
    uint64_t userVa = 0;  // kUser: the user address; kFile: the file offset
    int prot = 0;
    Source source = Source::kUser;
    std::weak_ptr<Mm> mm{};                     // kUser, kFile: iopt_pages->source_mm
    std::shared_ptr<File> file{};               // kFile: iopt_pages->file
    std::shared_ptr<IoptDmabufPages> dmabuf{};  // kDmabuf: no user range
    UserStruct* user = nullptr;                 // kUser, kFile: source_user
    // account_mode IOPT_PAGES_ACCOUNT_USER (else NONE): `user`'s locked_vm
    // is charged, within `memlockLimit` (bytes: the source task's
    // RLIMIT_MEMLOCK at the map).
    bool accountUser = false;
    uint64_t memlockLimit = 0;
  };
  // Areas taken out under the lock, released after it: a dma-buf area's
  // pages detach from the buffer, which takes its reservation lock.
  using Released = std::vector<std::shared_ptr<IoptDmabufPages>>;

  // iopt_map_common(): `area` at its IOVA or at one chosen for
  // `alignSource` (the user address, or the offset into the file).
  Result<uint64_t> mapArea(Area area, uint64_t alignSource, bool fixedIova) EXCLUDES(lock_);

  // The checks of a FIXED_IOVA map (iopt_check_iova()).
  Status checkFixedIova(uint64_t iova, uint64_t length) REQUIRES(lock_);
  // iopt_alloc_iova(): the lowest free IOVA of `length` bytes, aligned as
  // the kernel aligns it for `userVa`; -ENOSPC when no hole fits.
  Result<uint64_t> allocIova(uint64_t userVa, uint64_t length) REQUIRES(lock_);
  bool isFree(uint64_t iova, uint64_t length) const REQUIRES(lock_);
  bool isReserved(uint64_t iova, uint64_t length) const;
  // iopt_area_fill_domain(): `area` in `domain`; all or nothing.
  Status fillArea(IommuDomain& domain, const Area& area) REQUIRES(lock_);
  // iopt_area_unfill_domain().
  void unfillArea(IommuDomain& domain, const Area& area);
  // iopt_area_unfill_domains(): `area` out of every domain, its pages
  // unpinned and uncharged.
  void unfillDomains(const Area& area) REQUIRES(lock_);
  // Pins a user or file area's pages and maps them into `domain`; all or
  // nothing.
  Status fillDomain(IommuDomain& domain, const Area& area) REQUIRES(lock_);
  // The frame of page `index` of a user or file area.
  Result<Pfn> pinAreaPage(const Area& area, Mm* mm, uint64_t index);
  // One physically contiguous run into `domain`: one iommu_map(), or one
  // per page with large pages disabled; all or nothing.
  Status mapRun(IommuDomain& domain, uint64_t iova, PhysAddr phys, uint64_t length, int prot)
      REQUIRES(lock_);
  // do_update_pinned() for all of `area`'s pages: the user's locked_vm
  // (-ENOMEM past the limit, nothing charged) and the mm's pinned_vm.
  static Status chargePins(const Area& area);
  static void unchargePins(const Area& area);
  // pin_user_pages() of one page: its frame, or -EFAULT.
  Result<Pfn> pinPage(Mm& mm, uint64_t va, bool write);

  Iommu& iommu_;
  SystemRam& ram_;
  Mutex lock_{kIoptIovaLockClass};
  std::map<uint64_t, Area> areas_ GUARDED_BY(lock_);  // by IOVA
  std::vector<std::shared_ptr<IommuDomain>> domains_ GUARDED_BY(lock_);
  bool disableLargePages_ GUARDED_BY(lock_) = false;  // iopt->disable_large_pages
};

}  // namespace vfiomm
