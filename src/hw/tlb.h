// Tlb: one CPU's translation lookaside buffer. Separate set-associative
// arrays for 4 KiB, 2 MiB and 1 GiB translations with true LRU replacement;
// entries are tagged with the mm id the way x86 tags them with a PCID, so
// switching mm flushes nothing and a flush of one mm leaves the others'
// entries. The Tlb has no lock of its own: its Cpu's lock covers it, which is
// what makes a shootdown wait for an access in flight on that CPU.
//
// Geometry (docs/tlb.md): the defaults are the second-level TLB (STLB) of
// Intel Golden Cove, the core of Sapphire Rapids (4th gen Xeon Scalable),
// from the Intel 64 and IA-32 Architectures Optimization Reference Manual's
// TLB table for that core: 2048 entries 16-way shared by 4 KiB and 2 MiB
// pages, and 1024 entries 8-way for 1 GiB pages. The hardware shares the
// 2048 entries between 4 KiB and 2 MiB; the model gives each size its own
// 2048-entry array, so a mix of sizes sees up to twice the capacity.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "base/addr.h"
#include "base/page_geometry.h"

namespace vfiomm {

class PhysRegion;
struct HostPage;

struct TlbArrayGeometry {
  unsigned entries;
  unsigned ways;  // entries / ways sets, a power of two
};

struct TlbGeometry {
  TlbArrayGeometry page4k{2048, 16};  // Golden Cove STLB, 4K/2M/4M: 2048 entries, 16-way
  TlbArrayGeometry page2m{2048, 16};  // (the same structure; separate in the model)
  TlbArrayGeometry page1g{1024, 8};   // Golden Cove STLB, 1G: 1024 entries, 8-way
};

// What an entry caches: the leaf the walk found, plus what the model knows
// about the memory behind it, so that a hit needs no physical-map lookup:
// the region that decoded the last access, and, when that region is plain
// memory, the host page behind the 4 KiB virtual page last accessed.
struct TlbEntry {
  PtLevel level = PtLevel::kPte;
  Pfn pfnBase;  // first frame of the leaf (aligned to the leaf's size)
  bool writable = false;
  PhysRegion* region = nullptr;    // nullptr: find it at the next access
  uint64_t directVpn = 0;          // va >> 12 of that virtual page
  HostPage* directPage = nullptr;  // its memory, or nullptr

  PhysAddr physAddr(VirtAddr va) const {
    return pfnBase.toPhys() + (va.value() & (levelSize(level) - 1));
  }
};

// Per-TLB statistics. Written only by the owner under the CPU lock, read by
// anyone: plain load+store on atomics keeps the hit path free of RMWs.
struct TlbStats {
  std::array<std::atomic<uint64_t>, 3> hits{};   // by leaf level: 4K, 2M, 1G
  std::array<std::atomic<uint64_t>, 3> fills{};  // misses, by the level the walk found
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> pagesFlushed{0};  // invlpg-style invalidations
  std::atomic<uint64_t> fullFlushes{0};   // one mm, all entries
};

class Tlb {
 public:
  // mm ids are kept in the entry tag next to the page number.
  static constexpr unsigned kMmIdBits = 27;

  // Hits reach the global "tlb.hit" counter in batches of this many (an
  // atomic add per hit would be a third of the cost of a simulated load),
  // and whenever the TLB misses or is flushed: the counter is exact after
  // any of those and otherwise lags by less than a batch per CPU.
  static constexpr uint64_t kHitPublishBatch = 64;
  static_assert(isPowerOfTwo(kHitPublishBatch));

  explicit Tlb(const TlbGeometry& geometry = {});
  ~Tlb();
  Tlb(const Tlb&) = delete;
  Tlb& operator=(const Tlb&) = delete;

  // The entry translating `va` for `mmId`, or nullptr (counted as a miss).
  // A store that finds a read-only entry drops it and misses: the hardware
  // would raise a spurious #PF that the kernel answers by retrying, and the
  // retry walks the (maybe since upgraded) page table. The entry stays valid
  // until the next call on this Tlb. Inline: this is most of a CPU access.
  TlbEntry* lookup(uint64_t mmId, VirtAddr va, bool write) {
    TlbEntry* e = front(mmId, va, write);
    if (e != nullptr) [[likely]] {
      hitFront();
      return e;
    }
    return lookupArrays(mmId, va, write);
  }
  // The first half of a lookup that hits the front: the entry, or nullptr
  // (then lookup() decides). Counts nothing, so a caller may drop it.
  TlbEntry* front(uint64_t mmId, VirtAddr va, bool write) const {
    if ((Array::tagOf(mmId, va.value() >> kPageShift) & front_.mask) != front_.tag) return nullptr;
    if (write && !front_.entry->writable) return nullptr;
    return front_.entry;
  }
  // The second half: what lookup() counts for the entry front() returned.
  // The front's entry is the newest of its set already: the lookup that set
  // the front made it so, and whatever else reorders a set (a hit on another
  // entry, a fill, an invalidation) moves or drops the front.
  void hitFront() {
    ++clock_;
    hit(front_.level);
  }
  // Whether any entry of `mmId` translates `va`; no statistics, no LRU
  // update (monitors and tests).
  bool probe(uint64_t mmId, VirtAddr va) const;
  // Caches `entry`, the leaf that maps `va`, in the array of its level,
  // evicting the set's least recently used entry if the set is full.
  TlbEntry& insert(uint64_t mmId, VirtAddr va, const TlbEntry& entry);

  // invlpg at start, start + stride, ... < end: drops every entry of `mmId`,
  // of any size, that maps one of those addresses. Returns the addresses.
  uint64_t flushRange(uint64_t mmId, VirtAddr start, VirtAddr end, unsigned strideShift);
  // Every entry of `mmId` (a flush of one PCID).
  void flushMm(uint64_t mmId);
  void flushAll();
  // Forget every cached region and host page (the physical map changed);
  // the translations stay, as they would in hardware.
  void forgetRegions();

  // Valid entries, all mms (tests).
  size_t size() const;
  const TlbStats& stats() const { return stats_; }
  const TlbGeometry& geometry() const { return geometry_; }

 private:
  static constexpr size_t kNoSlot = SIZE_MAX;

  // One set-associative array for one page size. A tag is the valid bit,
  // the mm id and the page number, so one compare matches both.
  //
  // The storage comes with the first insert: most kernels vfiomm check and
  // the fuzzers build touch one or two CPUs and one page size, and a full
  // set of arrays is 320 KiB per CPU. Until then the array has no ways and
  // find() misses at once.
  class Array {
   public:
    Array(PtLevel level, const TlbArrayGeometry& g);
    void allocate();
    // Index of the entry holding `tag` (set * ways + way), or kNoSlot.
    size_t find(uint64_t tag) const {
      if (ways_ == 0) return kNoSlot;
      const size_t set = tag & setMask_;
      if ((present_[set] & presentBit(tag)) == 0) return kNoSlot;
      const size_t first = set * ways_;
      const uint64_t* tags = tags_.data() + first;
      uint64_t present = 0;
      for (unsigned w = 0; w < ways_; ++w) {
        if (tags[w] == tag) return first + w;
        present |= presentBit(tags[w]) & (tags[w] == 0 ? 0 : ~uint64_t{0});
      }
      present_[set] = present;  // read whole: exact again
      return kNoSlot;
    }
    // The oldest way of `tag`'s set: a free way if the set has one, else
    // the least recently used (the victim of an insert of `tag`).
    size_t oldest(uint64_t tag) const {
      const size_t set = tag & setMask_;
      return set * ways_ + ring_[set * ways_ + newest_[set]].newer;
    }
    // After a hit or a fill of the valid `slot`.
    void touch(size_t slot);
    // `tag` is the tag of `va`.
    void setTag(size_t slot, uint64_t tag, VirtAddr va) {
      tags_[slot] = tag;
      present_[tag & setMask_] |= presentBit(tag);
      filled_ |= bucketBit(va);
    }
    // Frees the valid `slot`.
    void invalidate(size_t slot);
    // Every way free, in whatever order the sets' rings have.
    void invalidateAll() {
      std::fill(tags_.begin(), tags_.end(), 0);
      std::fill(present_.begin(), present_.end(), 0);
      filled_ = 0;
    }
    // After invalidations: only the buckets that still hold an entry.
    void recountFilled() {
      filled_ = 0;
      for (const uint64_t tag : tags_)
        if (tag != 0) filled_ |= bucketBit(VirtAddr((tag & kVpnMask) << shift_));
    }
    // Whether an entry of any mm may map an address of the 1 GiB-aligned
    // range around `va`: false means certainly none.
    bool mayMapWithin1G(VirtAddr va) const { return (filled_ & bucketBit(va)) != 0; }
    static uint64_t tagOf(uint64_t mmId, uint64_t vpn) {
      return kTagValid | (mmId << kVpnBits) | vpn;
    }
    static uint64_t mmIdOfTag(uint64_t tag) { return (tag & ~kTagValid) >> kVpnBits; }
    uint64_t vpnOf(VirtAddr va) const { return va.value() >> shift_; }
    // The bit of the bucket of `va`'s 1 GiB-aligned range.
    static uint64_t bucketBit(VirtAddr va) {
      return uint64_t{1} << ((va.value() >> kPudShift) % kBuckets);
    }
    // `tag`'s bit in its set's present_ word: the six page-number bits just
    // above the set index, so that the ways a sequential walk fills in one
    // set take different bits.
    uint64_t presentBit(uint64_t tag) const { return uint64_t{1} << ((tag >> setShift_) % 64); }

    PtLevel level_;
    unsigned shift_;
    TlbArrayGeometry geometry_;
    unsigned ways_ = 0;  // 0 until allocate()
    uint64_t setMask_ = 0;
    unsigned setShift_ = 0;  // log2 of the number of sets
    // A set's ways in recency order form a ring: each way links to its next
    // older and next newer way (indices within the set), the set keeps its
    // newest, and the ring wraps, so the oldest is the newest's newer
    // neighbour. The free ways always lie together at the old end, because
    // a fill takes the oldest way and an invalidation makes its way the
    // oldest; so the oldest way is a free one if the set has any, else the
    // least recently used, and an insert finds its victim in two loads
    // where a scan for the smallest use time cost a dozen instructions per
    // way. Which free way a fill takes changes nothing that is counted.
    struct Link {
      uint32_t older;
      uint32_t newer;
    };
    Link* ringOf(size_t slot, size_t& set, uint32_t& way);
    // Takes `way` (neither the newest nor the oldest) out of its place and
    // puts it back between the newest and the oldest.
    static void moveToEnds(Link* ring, uint32_t way, uint32_t newest);

    std::vector<uint64_t> tags_;    // 0 = invalid; grouped by set, `ways_` per set
    std::vector<Link> ring_;        // per slot, as tags_
    std::vector<uint32_t> newest_;  // per set: the way used last
    std::vector<TlbEntry> entries_;
    // Per set, a superset of its valid tags' presentBit()s: a fill sets its
    // tag's bit, an invalidation or eviction leaves it, and a search that
    // reads the whole set without finding its tag puts the exact word back.
    // A clear bit is a miss without reading the set: in a design where every
    // access misses, the search of a full 16-way set was most of a miss.
    // Mutable: find() is a lookup that happens to refresh it.
    mutable std::vector<uint64_t> present_;
    // One bit per bucket of 1 GiB ranges (the range's number modulo
    // kBuckets), set by a fill in the range and cleared only when the array
    // is emptied or recounted: a superset of the buckets holding an entry,
    // which is what lets the front stand for a whole huge leaf. An insert
    // pays an OR, an invalidation nothing.
    static constexpr size_t kBuckets = 64;
    uint64_t filled_ = 0;
  };

  // A 47-bit user address has a 35-bit 4 KiB page number.
  static constexpr unsigned kVpnBits = 36;
  static constexpr uint64_t kVpnMask = (uint64_t{1} << kVpnBits) - 1;
  static constexpr uint64_t kTagValid = uint64_t{1} << 63;
  static_assert(kVpnBits + kMmIdBits == 63);

  // The arrays' search behind the front (it counts exactly as a front hit).
  TlbEntry* lookupArrays(uint64_t mmId, VirtAddr va, bool write);
  // Which bits of a 4 KiB page's tag the front compares after the arrays
  // found `va` in the array of `level`: the search finds that entry for
  // every 4 KiB page of its leaf unless an array searched before it (a
  // smaller size) may hold one of them; then only for `va`'s page.
  uint64_t frontMask(VirtAddr va, PtLevel level) const;
  // Forgets the front and the last miss, which stand for the arrays' answer
  // while no entry changes: every change to an entry starts here.
  void forgetLastLookups() {
    front_.tag = 0;
    lastMiss_ = 0;
  }

  void hit(PtLevel level) {
    bump(stats_.hits[static_cast<size_t>(level)]);
    // The clock ticks once per hit or fill, so this comes at least every
    // kHitPublishBatch hits.
    if ((clock_ & (kHitPublishBatch - 1)) == 0) publishHits();
  }
  void miss();
  // Adds the hits not yet counted to "tlb.hit".
  void publishHits();

  Array& arrayFor(PtLevel level) { return arrays_[static_cast<size_t>(level)]; }
  static void bump(std::atomic<uint64_t>& stat, uint64_t n = 1) {
    stat.store(stat.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  // The last entry a lookup hit, in front of the arrays the way the
  // hardware's first-level DTLB sits in front of its STLB, so that the next
  // access to the same page finds it with one compare: the same 4 KiB page,
  // or the same huge leaf when no smaller entry may shadow part of it.
  // Unlike the hardware's it is not a second level: it mirrors one entry of
  // the arrays, a hit through it counts as the arrays' hit would, and
  // anything that changes an entry of the arrays drops it. So it changes no
  // statistic, no eviction and no walk, only the cost.
  struct Front {
    // Array::tagOf(mm id, 4 KiB page number) & mask; 0: empty (a tag
    // always has its valid bit).
    uint64_t tag = 0;
    uint64_t mask = ~uint64_t{0};  // clears the 4 KiB page number's bits within the leaf
    TlbEntry* entry = nullptr;
    PtLevel level = PtLevel::kPte;
  };

  TlbGeometry geometry_;
  Front front_;
  // The 4 KiB tag of the last lookup that missed every array, or 0: until
  // an entry changes, a lookup of that page misses again without a search
  // (the retry after a page fault).
  uint64_t lastMiss_ = 0;
  std::array<Array, 3> arrays_;
  uint64_t clock_ = 0;          // one tick per lookup hit or insert
  uint64_t publishedHits_ = 0;  // the part of stats_.hits already in "tlb.hit"
  // clock_ as of the last publishHits(), carried along by fills: equal to
  // clock_ exactly when no hit waits to be published, so that a miss (in a
  // design where every access misses, after every fill) skips summing the
  // hits to find nothing to add.
  uint64_t quietClock_ = 0;
  TlbStats stats_;
};

}  // namespace vfiomm
