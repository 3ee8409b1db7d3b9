// Where page-table pages come from. Like the kernel's page allocator handing
// out page-table pages with their struct ptdesc (which holds the split PTL),
// the arena hands out 4 KiB-aligned pages of 512 entries, each with a small
// descriptor kept outside the page. Pages are carved from 2 MiB chunks whose
// first two pages hold the descriptors of the other 510, so a fully
// populated 4 KiB mapping costs 4096 + 16 bytes per 512 pages mapped.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "base/page_geometry.h"
#include "sync/lock_class.h"
#include "sync/spin_lock.h"

namespace vfiomm {

// One page of a page table: 512 entries that the MMU walk reads without a lock.
struct alignas(kPageSize) PageTablePage {
  std::array<std::atomic<uint64_t>, kPtrsPerTable> entries;
};
static_assert(sizeof(PageTablePage) == kPageSize);

// Split page-table locks share one class, as in Linux (ptlock_init).
inline const LockClass kPtlockClass{"ptlock_ptr(ptdesc)"};

class PageTableArena {
 public:
  static constexpr uint64_t kChunkSize = 2ULL << 20;
  static constexpr size_t kDescPages = 2;
  static constexpr size_t kPagesPerChunk = kChunkSize / kPageSize - kDescPages;  // 510

  PageTableArena() = default;
  // Every page must have been freed: the tables of every mm are gone.
  ~PageTableArena();
  PageTableArena(const PageTableArena&) = delete;
  PageTableArena& operator=(const PageTableArena&) = delete;

  // A zeroed page with its lock constructed; nullptr only if the host is out
  // of memory.
  PageTablePage* alloc();
  void free(PageTablePage* page);
  // Frees `page` into the arena it came from (a chunk knows its arena, as a
  // page its node): for tlb_remove_table() batches, which do not.
  static void release(PageTablePage* page);

  static SpinLock& ptl(const PageTablePage* page);

  // Host bytes a table page costs: the page and its descriptor.
  static constexpr size_t kBytesPerPage = kPageSize + 16;
  size_t pagesInUse() const;
  // Counts the pages still in use as gone, so that the arena may go with
  // its chunks: only for pages no page table reaches any more, which a
  // seeded bug of `vfiomm check` leaked on purpose (invariant 6 saw them).
  void forgetLeaked();

 private:
  struct Desc {
    SpinLock ptl{kPtlockClass};
  };
  static_assert(sizeof(Desc) <= 16);
  // The descriptor pages end with a pointer to the chunk's arena.
  // NOLINTNEXTLINE(bugprone-sizeof-expression): the slot holds a pointer
  static_assert(kPagesPerChunk * sizeof(Desc) + sizeof(PageTableArena*) <= kDescPages * kPageSize);
  static Desc& desc(const PageTablePage* page);
  static PageTableArena*& owner(const void* chunk);
  void grow();

  mutable std::mutex mu_;  // the allocator's own lock; not a modelled kernel lock
  std::vector<void*> chunks_;
  std::vector<PageTablePage*> free_;
  size_t inUse_ = 0;
};

}  // namespace vfiomm
