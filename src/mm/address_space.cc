#include "mm/address_space.h"

#include <algorithm>
#include <climits>

#include "mm/pfn_insert.h"
#include "mm/vma.h"
#include "trace/tracer.h"

namespace vfiomm {

namespace {

// The span of an unmap_mapping_range call, recorded when it returns.
class UnmapTrace {
 public:
  UnmapTrace(uint64_t holebegin, uint64_t holelen, const uint64_t& cleared)
      : begin_(trace::enabled() ? trace::Tracer::current().now() : kOff),
        holebegin_(holebegin),
        holelen_(holelen),
        cleared_(cleared) {}
  ~UnmapTrace() {
    if (begin_ != kOff) [[unlikely]]
      record();
  }
  UnmapTrace(const UnmapTrace&) = delete;
  UnmapTrace& operator=(const UnmapTrace&) = delete;

 private:
  static constexpr uint64_t kOff = UINT64_MAX;

  void record() const {
    trace::Tracer& t = trace::Tracer::current();
    trace::TraceEvent e;
    e.kind = trace::EventKind::kUnmapMappingRange;
    e.ts = begin_;
    e.dur = t.now() - begin_;
    e.addr = holebegin_;
    e.end = holelen_ == 0 ? UINT64_MAX : holebegin_ + holelen_;
    e.value = cleared_;
    t.record(e);
  }

  const uint64_t begin_;
  const uint64_t holebegin_;
  const uint64_t holelen_;
  const uint64_t& cleared_;
};

}  // namespace

void AddressSpace::insertVma(Vma& vma) {
  iMmap_.insert(&vma, vma.pgoff().value(), vma.pgoffLast());
}

void AddressSpace::insertVmaAfter(Vma& prev, Vma& vma) {
  iMmap_.insertAfter(&prev, &vma, vma.pgoff().value(), vma.pgoffLast());
}

void AddressSpace::removeVma(Vma& vma) { iMmap_.erase(&vma); }

void AddressSpace::forEachVma(uint64_t first, uint64_t last, const std::function<void(Vma&)>& fn) {
  iMmap_.forEachOverlap(first, last, [&](Vma* v, uint64_t, uint64_t) { fn(*v); });
}

uint64_t AddressSpace::unmapMappingRange(uint64_t holebegin, uint64_t holelen, bool evenCows,
                                         ZapFlush flush) {
  (void)evenCows;  // only private COW copies care; vfio VMAs are never COW
  const uint64_t first = holebegin >> kPageShift;
  uint64_t last = ULLONG_MAX;
  if (holelen != 0) {
    const uint64_t nr = (holelen + kPageSize - 1) >> kPageShift;
    if (first + nr > first) last = first + nr - 1;  // else clamp: overflow
  }
  unmapCalls_.fetch_add(1, std::memory_order_relaxed);
  uint64_t cleared = 0;
  const UnmapTrace traced(holebegin, holelen, cleared);
  ReadGuard guard(iMmapRwsem_);
  if (iMmap_.empty()) return 0;
  iMmap_.forEachOverlap(first, last, [&](Vma* vma, uint64_t vfirst, uint64_t vlast) {
    if (zapObserver_) zapObserver_(*vma);
    const uint64_t zfirst = std::max(first, vfirst);
    const uint64_t zlast = std::min(last, vlast);
    const VirtAddr start = vma->start() + ((zfirst - vfirst) << kPageShift);
    const uint64_t size = (zlast - zfirst + 1) << kPageShift;
    cleared += zapPageRangeSingle(*vma, start, size, flush).total();
    if (zapCheck_) zapCheck_(*vma, start, start + size);
  });
  return cleared;
}

}  // namespace vfiomm
