// SystemRam: the host's ordinary memory as the physical map decodes it, and
// the page frames anonymous memory gets when something pins it. The model
// gives anonymous memory no frames on CPU faults (it has no contents); only a
// long-term pin (type1's MAP_DMA) needs a frame an IOMMU can point at, so
// the first pin of a page allocates one and later pins find the same one,
// until the mm lets the page go (munmap, MADV_DONTNEED) or moves it
// (mremap). Frames are never freed: one an IOMMU still maps keeps its
// contents, and a later pin of the address gets a fresh one, as in Linux.
//
// The hugetlb pool (nr_hugepages of each hstate, mm/hugetlb.c) is carved
// out of the top of the RAM when the kernel boots, as a boot-time pool is:
// physically contiguous, naturally aligned 1 GiB pages first, then 2 MiB
// pages below them; ordinary frames come from below the pool. A mapping
// reserves its huge pages at mmap (hugetlb_reserve_pages) and takes them
// from the pool on first use; like ordinary frames, a huge page once taken
// stays with its file.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "base/addr.h"
#include "base/result.h"
#include "hw/machine.h"
#include "hw/phys_mem_map.h"

namespace vfiomm {

// The hugetlb pool asked for at boot (hugepagesz=/hugepages= or
// nr_hugepages): pages of each size. The kernel's default is none.
struct HugetlbPoolConfig {
  uint64_t pages2M = 0;
  uint64_t pages1G = 0;
};

class SystemRam {
 public:
  // Below the 32-bit PCI window (0xE000_0000) and above the legacy first MiB.
  static constexpr uint64_t kBase = 0x1000'0000;
  static constexpr uint64_t kSize = 0x8000'0000;

  // Registers the RAM with `machine`'s physical map for its lifetime and
  // carves the hugetlb pool: as many of the pages asked for as fit.
  explicit SystemRam(Machine& machine, HugetlbPoolConfig pool = {});
  ~SystemRam();
  SystemRam(const SystemRam&) = delete;
  SystemRam& operator=(const SystemRam&) = delete;

  // The frame behind page `page` of mm `mmId`, allocated on first use;
  // -ENOMEM when the RAM is exhausted.
  Result<Pfn> frameFor(uint64_t mmId, VirtAddr page);
  // The pages of [start, end) of mm `mmId` are gone (zapped and freed):
  // their next use gets fresh frames.
  void forgetFrames(uint64_t mmId, VirtAddr start, VirtAddr end);
  // move_page_tables() of anonymous memory: the pages of [from, from + len)
  // are at `to` now.
  void moveFrames(uint64_t mmId, VirtAddr from, VirtAddr to, uint64_t len);
  // A fresh frame of no mm (a shmem page); -ENOMEM when the RAM is exhausted.
  Result<Pfn> allocFrame();
  // Whether `pfn` has a struct page (is RAM rather than device memory).
  bool contains(Pfn pfn) const { return pfn >= region_.firstPfn() && pfn < region_.endPfn(); }

  // Whether `size` is a huge page size the pool has (an hstate: 2 MiB, 1 GiB).
  static bool isHstate(uint64_t size);
  // HugePages_Total of the hstate `size`: the pool's pages of that size.
  uint64_t hugePagesTotal(uint64_t size);
  // hugetlb_acct_memory(): reserves `count` pages of size `size` for a
  // mapping; -ENOMEM when the pool's free pages not yet reserved are fewer.
  Status reserveHugePages(uint64_t size, uint64_t count);
  // Returns reservations a mapping did not use.
  void unreserveHugePages(uint64_t size, uint64_t count);
  // alloc_hugetlb_folio(): the first frame of a free huge page of `size`,
  // taken from the pool; `reserved` consumes one of the caller's
  // reservations, otherwise only a page nobody reserved may go. -ENOMEM
  // when there is none.
  Result<Pfn> allocHugePage(uint64_t size, bool reserved);

 private:
  struct Hstate {
    std::vector<Pfn> free;  // the pool's free pages, lowest address last
    uint64_t total = 0;
    uint64_t reserved = 0;  // resv_huge_pages
  };
  Hstate& hstate(uint64_t size);  // mu_ held
  Result<Pfn> nextFrame();        // mu_ held

  Machine& machine_;
  RamRegion region_;
  // Not a model lock: the page allocator's zone lock is not modelled.
  std::mutex mu_;
  std::map<std::pair<uint64_t, uint64_t>, Pfn> frames_;  // (mm, vpn) -> frame
  uint64_t nextFrame_ = 0;
  uint64_t frameLimit_ = kSize / kPageSize;  // the pool starts here
  Hstate huge2M_;
  Hstate huge1G_;
};

}  // namespace vfiomm
