// SystemRam: the host's ordinary memory as the physical map decodes it, and
// the page frames anonymous memory gets when something pins it. The model
// gives anonymous memory no frames on CPU faults (it has no contents); only a
// long-term pin (type1's MAP_DMA) needs a frame an IOMMU can point at, so
// the first pin of a page allocates one and later pins find the same one.
// Frames are never freed: a pinned page outlives nothing the model observes.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "base/addr.h"
#include "base/result.h"
#include "mm/machine.h"
#include "mm/phys_mem_map.h"

namespace vfiomm {

class SystemRam {
 public:
  // Below the 32-bit PCI window (0xE000_0000) and above the legacy first MiB.
  static constexpr uint64_t kBase = 0x1000'0000;
  static constexpr uint64_t kSize = 0x8000'0000;

  // Registers the RAM with `machine`'s physical map for its lifetime.
  explicit SystemRam(Machine& machine);
  ~SystemRam();
  SystemRam(const SystemRam&) = delete;
  SystemRam& operator=(const SystemRam&) = delete;

  // The frame behind page `page` of mm `mmId`, allocated on first use;
  // -ENOMEM when the RAM is exhausted.
  Result<Pfn> frameFor(uint64_t mmId, VirtAddr page);
  // Whether `pfn` has a struct page (is RAM rather than device memory).
  bool contains(Pfn pfn) const { return pfn >= region_.firstPfn() && pfn < region_.endPfn(); }

 private:
  Machine& machine_;
  RamRegion region_;
  // Not a model lock: the page allocator's zone lock is not modelled.
  std::mutex mu_;
  std::map<std::pair<uint64_t, uint64_t>, Pfn> frames_;  // (mm, vpn) -> frame
  uint64_t nextFrame_ = 0;
};

}  // namespace vfiomm
