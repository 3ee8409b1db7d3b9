#include "iommu/iommu_domain.h"

#include "base/assert.h"
#include "base/counter.h"
#include "base/page_geometry.h"

namespace vfiomm {

namespace {

// What a run's DMA maps cost the IOMMU side (the scenario metrics of
// docs/json-schema.md): iommu_map() calls and the leaves they installed.
VFIOMM_COUNTER(iommuMapCalls, "iommu.map.calls", "iommu_map() calls");
VFIOMM_COUNTER(iopteMapped4K, "iommu.iopte.map.4k", "4 KiB IOPTEs installed by iommu_map()");
VFIOMM_COUNTER(iopteMapped2M, "iommu.iopte.map.2m", "2 MiB IOPTEs installed by iommu_map()");
VFIOMM_COUNTER(iopteMapped1G, "iommu.iopte.map.1g", "1 GiB IOPTEs installed by iommu_map()");
VFIOMM_COUNTER(iovaToPhysCounter, "iommu.iova_to_phys", "iommu_iova_to_phys() calls");

constexpr uint64_t kSize2M = uint64_t{1} << 21;
constexpr uint64_t kSize1G = uint64_t{1} << 30;

}  // namespace

IommuDomain::IommuDomain(uint64_t pgsizeBitmap) : pgsizeBitmap_(pgsizeBitmap) {
  VFIOMM_ASSERT(pgsizeBitmap != 0 && (pgsizeBitmap & (kPageSize - 1)) == 0);
}

uint64_t IommuDomain::pgsizeFor(uint64_t iova, PhysAddr paddr, uint64_t remaining) const {
  const uint64_t addrMerge = iova | paddr.value();
  uint64_t best = 0;
  for (uint64_t bits = pgsizeBitmap_; bits != 0; bits &= bits - 1) {
    const uint64_t size = bits & (~bits + 1);
    if (size <= remaining && (addrMerge & (size - 1)) == 0) best = size;
  }
  return best;
}

Status IommuDomain::map(uint64_t iova, PhysAddr paddr, uint64_t size, int prot) {
  mapCalls_.fetch_add(1, std::memory_order_relaxed);
  iommuMapCalls.add();
  const uint64_t min = minPageSize();
  if (size == 0 || ((iova | paddr.value() | size) & (min - 1)) != 0) return fail(Errno::kEINVAL);
  SpinGuard g(lock_);
  // A leaf in the way makes the page-table code refuse; iommu_map() then
  // unmaps what it did so far. Checking first has the same outcome.
  if (anyLeafIn(iova, size)) return fail(Errno::kEEXIST);
  for (uint64_t done = 0; done < size;) {
    const uint64_t leaf = pgsizeFor(iova + done, paddr + done, size - done);
    leaves_.emplace(iova + done, Iopte{paddr + done, leaf, prot});
    count(leaf, 1);
    (leaf == kSize1G ? iopteMapped1G : leaf == kSize2M ? iopteMapped2M : iopteMapped4K).add();
    done += leaf;
  }
  return ok();
}

uint64_t IommuDomain::unmap(uint64_t iova, uint64_t size) {
  SpinGuard g(lock_);
  uint64_t removed = 0;
  removeLeaves(iova, size, &removed);
  if (removed != 0) lastLeaf_.clear();
  return removed;
}

void IommuDomain::removeLeaves(uint64_t iova, uint64_t size, uint64_t* removed) {
  auto it = leaves_.lower_bound(iova);
  while (it != leaves_.end() && it->first - iova < size) {
    *removed += it->second.size;
    count(it->second.size, -1);
    it = leaves_.erase(it);
  }
}

std::optional<PhysAddr> IommuDomain::iovaToPhys(uint64_t iova) {
  iovaToPhysCalls_.fetch_add(1, std::memory_order_relaxed);
  iovaToPhysCounter.add();
  if (const std::optional<PhysAddr> pa = lastLeaf_.translate(iova)) return pa;
  SpinGuard g(lock_);
  const std::optional<Iopte> leaf = leafAt(iova);
  if (!leaf) return std::nullopt;
  // A leaf is aligned to its size in IOVA as in physical space (pgsizeFor).
  lastLeaf_.set(iova & ~(leaf->size - 1), *leaf);
  return leaf->paddr + (iova & (leaf->size - 1));
}

std::optional<PhysAddr> IommuDomain::LastLeaf::translate(uint64_t iova) const {
  const uint64_t seq = seq_.load(std::memory_order_acquire);
  if (seq & 1) return std::nullopt;
  // Acquire loads: a value set() stored after making the count odd brings
  // that odd count (or a later one) with it to the check below.
  const uint64_t start = iova_.load(std::memory_order_acquire);
  const uint64_t size = size_.load(std::memory_order_acquire);
  const uint64_t paddr = paddr_.load(std::memory_order_acquire);
  if (seq_.load(std::memory_order_relaxed) != seq) return std::nullopt;
  if (size == 0 || iova - start >= size) return std::nullopt;
  return PhysAddr(paddr + (iova - start));
}

void IommuDomain::LastLeaf::set(uint64_t iova, const Iopte& leaf) {
  const uint64_t seq = seq_.load(std::memory_order_relaxed);
  seq_.store(seq + 1, std::memory_order_relaxed);
  iova_.store(iova, std::memory_order_release);
  size_.store(leaf.size, std::memory_order_release);
  paddr_.store(leaf.paddr.value(), std::memory_order_release);
  seq_.store(seq + 2, std::memory_order_release);
}

std::optional<IommuDomain::Iopte> IommuDomain::leafAt(uint64_t iova) const {
  auto it = leaves_.upper_bound(iova);
  if (it == leaves_.begin()) return std::nullopt;
  --it;
  if (iova - it->first >= it->second.size) return std::nullopt;
  return it->second;
}

bool IommuDomain::anyLeafIn(uint64_t iova, uint64_t size) const {
  if (leafAt(iova)) return true;
  auto it = leaves_.upper_bound(iova);
  return it != leaves_.end() && it->first - iova < size;
}

IopteCounts IommuDomain::iopteCounts() {
  SpinGuard g(lock_);
  return counts_;
}

void IommuDomain::count(uint64_t size, int delta) {
  uint64_t& slot = size == kSize1G   ? counts_.size1G
                   : size == kSize2M ? counts_.size2M
                                     : counts_.size4K;
  slot += static_cast<uint64_t>(static_cast<int64_t>(delta));
}

}  // namespace vfiomm
