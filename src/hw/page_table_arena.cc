#include "hw/page_table_arena.h"

#include <cstdlib>
#include <new>

#include "base/assert.h"

namespace vfiomm {

PageTableArena::~PageTableArena() {
  VFIOMM_ASSERT_MSG(inUse_ == 0, "a page table outlives the machine it was allocated on");
  for (void* chunk : chunks_) std::free(chunk);
}

PageTableArena*& PageTableArena::owner(const void* chunk) {
  auto base = reinterpret_cast<uintptr_t>(chunk) & ~(kChunkSize - 1);
  // The last bytes of the descriptor pages hold the arena's address.
  constexpr uint64_t kSlot = sizeof(PageTableArena*);  // NOLINT(bugprone-sizeof-expression)
  return *reinterpret_cast<PageTableArena**>(base + kDescPages * kPageSize - kSlot);
}

void PageTableArena::release(PageTablePage* page) { owner(page)->free(page); }

PageTableArena::Desc& PageTableArena::desc(const PageTablePage* page) {
  auto addr = reinterpret_cast<uintptr_t>(page);
  uintptr_t chunk = addr & ~(kChunkSize - 1);
  size_t index = (addr - chunk) / kPageSize - kDescPages;
  return reinterpret_cast<Desc*>(chunk)[index];
}

void PageTableArena::grow() {
  void* chunk = std::aligned_alloc(kChunkSize, kChunkSize);
  if (chunk == nullptr) throw std::bad_alloc();
  chunks_.push_back(chunk);
  owner(chunk) = this;
  auto* pages = static_cast<PageTablePage*>(chunk) + kDescPages;
  // Hand out low addresses first (the free list is a stack).
  for (size_t i = kPagesPerChunk; i-- > 0;) free_.push_back(pages + i);
}

PageTablePage* PageTableArena::alloc() {
  PageTablePage* page;
  {
    std::lock_guard lock(mu_);
    if (free_.empty()) grow();
    page = free_.back();
    free_.pop_back();
    ++inUse_;
  }
  auto* p = new (page) PageTablePage();
  for (auto& e : p->entries) e.store(0, std::memory_order_relaxed);
  new (&desc(p)) Desc();
  return p;
}

void PageTableArena::free(PageTablePage* page) {
  VFIOMM_ASSERT(page != nullptr);
  desc(page).~Desc();
  page->~PageTablePage();
  std::lock_guard lock(mu_);
  free_.push_back(page);
  --inUse_;
}

SpinLock& PageTableArena::ptl(const PageTablePage* page) { return desc(page).ptl; }

void PageTableArena::forgetLeaked() {
  std::lock_guard lock(mu_);
  inUse_ = 0;
}

size_t PageTableArena::pagesInUse() const {
  std::lock_guard lock(mu_);
  return inUse_;
}

}  // namespace vfiomm
