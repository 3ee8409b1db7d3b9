#include "hw/tlb.h"

#include <algorithm>
#include <bit>

#include "base/assert.h"
#include "base/counter.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(tlbHit, "tlb.hit",
               "loads and stores whose translation a TLB held (published per CPU in batches: "
               "exact after a miss or flush on that CPU)");
VFIOMM_COUNTER(tlbMiss, "tlb.miss", "loads and stores that missed the TLB");
VFIOMM_COUNTER(tlbFlushOne, "tlb.flush.one",
               "single-address TLB invalidations (invlpg), summed over CPUs");
VFIOMM_COUNTER(tlbFlushFull, "tlb.flush.full",
               "whole-mm TLB flushes (all entries of one PCID), summed over CPUs");

}  // namespace

// --- Tlb::Array ------------------------------------------------------------------

Tlb::Array::Array(PtLevel level, const TlbArrayGeometry& g)
    : level_(level), shift_(levelShift(level)), geometry_(g) {
  VFIOMM_ASSERT_MSG(g.ways > 0 && g.entries % g.ways == 0 && isPowerOfTwo(g.entries / g.ways),
                    "TLB geometry: entries / ways must be a power of two");
}

void Tlb::Array::allocate() {
  tags_.assign(geometry_.entries, 0);
  entries_.resize(geometry_.entries);
  ways_ = geometry_.ways;
  setMask_ = geometry_.entries / ways_ - 1;
  setShift_ = static_cast<unsigned>(std::countr_zero(setMask_ + 1));
  present_.assign(setMask_ + 1, 0);
  // Each set's ring in way order, the last way newest, so way 0 is filled
  // first.
  ring_.resize(geometry_.entries);
  for (size_t slot = 0; slot < ring_.size(); ++slot) {
    const auto way = static_cast<uint32_t>(slot % ways_);
    ring_[slot] = Link{(way + ways_ - 1) % ways_, (way + 1) % ways_};
  }
  newest_.assign(setMask_ + 1, ways_ - 1);
}

Tlb::Array::Link* Tlb::Array::ringOf(size_t slot, size_t& set, uint32_t& way) {
  set = tags_[slot] & setMask_;
  const size_t first = set * ways_;
  way = static_cast<uint32_t>(slot - first);
  return ring_.data() + first;
}

void Tlb::Array::moveToEnds(Link* ring, uint32_t way, uint32_t newest) {
  const Link l = ring[way];
  ring[l.older].newer = l.newer;
  ring[l.newer].older = l.older;
  const uint32_t oldest = ring[newest].newer;
  ring[way] = Link{newest, oldest};
  ring[newest].newer = way;
  ring[oldest].older = way;
}

void Tlb::Array::touch(size_t slot) {
  size_t set = 0;
  uint32_t way = 0;
  Link* ring = ringOf(slot, set, way);
  uint32_t& newest = newest_[set];
  if (way == newest) return;
  // The oldest way (an insert's victim) becomes the newest by turning the
  // ring one step; any other is moved there first.
  if (way != ring[newest].newer) moveToEnds(ring, way, newest);
  newest = way;
}

void Tlb::Array::invalidate(size_t slot) {
  size_t set = 0;
  uint32_t way = 0;
  Link* ring = ringOf(slot, set, way);
  tags_[slot] = 0;
  uint32_t& newest = newest_[set];
  if (way == ring[newest].newer) return;
  // The newest becomes the oldest by turning the ring one step back.
  if (way == newest) {
    newest = ring[way].older;
    return;
  }
  moveToEnds(ring, way, newest);
}

// --- Tlb -------------------------------------------------------------------------

Tlb::Tlb(const TlbGeometry& geometry)
    : geometry_(geometry),
      arrays_{Array(PtLevel::kPte, geometry.page4k), Array(PtLevel::kPmd, geometry.page2m),
              Array(PtLevel::kPud, geometry.page1g)} {}

Tlb::~Tlb() { publishHits(); }

TlbEntry* Tlb::lookupArrays(uint64_t mmId, VirtAddr va, bool write) {
  const uint64_t page = Array::tagOf(mmId, va.value() >> kPageShift);
  if (page == lastMiss_) {
    miss();
    return nullptr;
  }
  for (Array& a : arrays_) {
    const size_t slot = a.find(Array::tagOf(mmId, a.vpnOf(va)));
    if (slot == kNoSlot) continue;
    TlbEntry& e = a.entries_[slot];
    if (write && !e.writable) [[unlikely]] {
      // A miss, but not one to remember: a larger entry may map the page.
      forgetLastLookups();
      a.invalidate(slot);
      miss();
      return nullptr;
    }
    a.touch(slot);
    ++clock_;
    hit(a.level_);
    const uint64_t mask = frontMask(va, a.level_);
    front_ = Front{page & mask, mask, &e, a.level_};
    return &e;
  }
  lastMiss_ = page;
  miss();
  return nullptr;
}

uint64_t Tlb::frontMask(VirtAddr va, PtLevel level) const {
  // The arrays are searched 4 KiB first; while no entry changes (every
  // change drops the front), the search finds the same entry for any
  // address that no array before `level`'s holds.
  for (const Array& a : arrays_) {
    if (a.level_ == level) return ~((levelSize(level) >> kPageShift) - 1);
    if (a.mayMapWithin1G(va)) break;
  }
  return ~uint64_t{0};
}

void Tlb::publishHits() {
  quietClock_ = clock_;
  uint64_t hits = 0;
  for (const auto& h : stats_.hits) hits += h.load(std::memory_order_relaxed);
  if (hits == publishedHits_) return;
  tlbHit.add(hits - publishedHits_);
  publishedHits_ = hits;
}

void Tlb::miss() {
  if (clock_ != quietClock_) publishHits();
  bump(stats_.misses);
  tlbMiss.add();
}

bool Tlb::probe(uint64_t mmId, VirtAddr va) const {
  return std::any_of(arrays_.begin(), arrays_.end(), [&](const Array& a) {
    return a.find(Array::tagOf(mmId, a.vpnOf(va))) != kNoSlot;
  });
}

TlbEntry& Tlb::insert(uint64_t mmId, VirtAddr va, const TlbEntry& entry) {
  VFIOMM_ASSERT_MSG(mmId < (uint64_t{1} << kMmIdBits), "mm id does not fit a TLB tag");
  VFIOMM_ASSERT_MSG(va.value() < (uint64_t{1} << (kVpnBits + kPageShift)), "not a user address");
  VFIOMM_ASSERT_MSG(entry.pfnBase.isAligned(levelOrder(entry.level)), "misaligned leaf pfn");
  // The fill after a miss of this page, with no entry changed since: no
  // array holds the page, so there is no entry of it to replace.
  const bool absent = lastMiss_ == Array::tagOf(mmId, va.value() >> kPageShift);
  forgetLastLookups();
  Array& a = arrayFor(entry.level);
  if (a.ways_ == 0) [[unlikely]]
    a.allocate();
  const uint64_t tag = Array::tagOf(mmId, a.vpnOf(va));
  const size_t held = absent ? kNoSlot : a.find(tag);
  const size_t slot = held != kNoSlot ? held : a.oldest(tag);
  a.setTag(slot, tag, va);
  a.touch(slot);
  // A fill is no hit: if none was waiting to be published, none is now.
  if (clock_++ == quietClock_) quietClock_ = clock_;
  a.entries_[slot] = entry;
  bump(stats_.fills[static_cast<size_t>(entry.level)]);
  return a.entries_[slot];
}

uint64_t Tlb::flushRange(uint64_t mmId, VirtAddr start, VirtAddr end, unsigned strideShift) {
  publishHits();
  forgetLastLookups();
  uint64_t pages = 0;
  for (uint64_t addr = start.value(); addr < end.value(); addr += uint64_t{1} << strideShift) {
    for (Array& a : arrays_) {
      const size_t slot = a.find(Array::tagOf(mmId, a.vpnOf(VirtAddr(addr))));
      if (slot != kNoSlot) a.invalidate(slot);
    }
    ++pages;
  }
  bump(stats_.pagesFlushed, pages);
  tlbFlushOne.add(pages);
  return pages;
}

void Tlb::flushMm(uint64_t mmId) {
  publishHits();
  forgetLastLookups();
  for (Array& a : arrays_) {
    for (size_t s = 0; s < a.tags_.size(); ++s)
      if (a.tags_[s] != 0 && Array::mmIdOfTag(a.tags_[s]) == mmId) a.invalidate(s);
    a.recountFilled();
  }
  bump(stats_.fullFlushes);
  tlbFlushFull.add();
}

void Tlb::flushAll() {
  publishHits();
  forgetLastLookups();
  for (Array& a : arrays_) a.invalidateAll();
  bump(stats_.fullFlushes);
  tlbFlushFull.add();
}

void Tlb::forgetRegions() {
  // An invalid entry's cache is never read: insert() overwrites it whole.
  forgetLastLookups();
  for (Array& a : arrays_)
    for (size_t s = 0; s < a.tags_.size(); ++s) {
      if (a.tags_[s] == 0) continue;
      a.entries_[s].region = nullptr;
      a.entries_[s].directPage = nullptr;
    }
}

size_t Tlb::size() const {
  size_t n = 0;
  for (const Array& a : arrays_)
    n += static_cast<size_t>(
        std::count_if(a.tags_.begin(), a.tags_.end(), [](uint64_t t) { return t != 0; }));
  return n;
}

}  // namespace vfiomm
