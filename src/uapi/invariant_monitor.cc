#include "uapi/invariant_monitor.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "kernel/kernel.h"
#include "mm/address_space.h"
#include "mm/mm.h"
#include "sync/lockdep.h"
#include "uapi/process.h"
#include "vfio/vfio_device.h"

namespace vfiomm {

namespace {

constexpr size_t kMaxFindings = 64;

// The pfn that should back `vma->vm_start`.
Pfn expectedStartPfn(VfioDevice& dev, const Vma& vma) {
  if (designTraits(dev.pci().design().kind()).pgoffHoldsPfn) return Pfn(vma.pgoff().value());
  return dev.pci().vmaToPfn(vma);
}

// Calls fn(va, level) for each leaf of `mm` that no VMA covers: it maps a
// pfn that no address calls for (a fault that went on with a VMA a munmap
// had removed).
template <typename Fn>
void forEachUncoveredLeaf(Mm& mm, Fn&& fn) REQUIRES_SHARED(mm.mmapLock()) {
  std::vector<std::pair<VirtAddr, PtLevel>> leaves;
  mm.pageTable().forEachLeaf(
      VirtAddr(0), VirtAddr(kTaskSize),
      [&](VirtAddr va, PtLevel level, uint64_t) { leaves.emplace_back(va, level); });
  for (const auto& [va, level] : leaves)
    if (mm.findVma(va) == nullptr) fn(va, level);
}

}  // namespace

InvariantMonitor::InvariantMonitor(Kernel& kernel)
    : kernel_(kernel),
      decodeBase_(kernel.pciHost().decodeViolationCount()),
      lockdepBase_(lockdep::reportCount()),
      dmaDecodeBase_(kernel.iommu().dmaDecodeViolationCount()) {
  for (const auto& dev : kernel_.devices())
    dev->inode().mapping().setZapCheck(
        [this](const Vma& vma, VirtAddr s, VirtAddr e) { afterZap(vma, s, e); });
}

InvariantMonitor::~InvariantMonitor() {
  for (const auto& dev : kernel_.devices()) dev->inode().mapping().setZapCheck({});
}

void InvariantMonitor::note(std::atomic<uint64_t>& counter, std::string what) {
  counter.fetch_add(1);
  std::lock_guard g(findingsMu_);
  if (findings_.size() < kMaxFindings) findings_.push_back(std::move(what));
}

// Runs inside unmap_mapping_range (i_mmap_rwsem held for read), right after
// the VMA's part was zapped and the TLBs flushed: its tables cannot go away.
void InvariantMonitor::afterZap(const Vma& vma, VirtAddr start, VirtAddr end) {
  Mm& mm = vma.mm();
  const std::string by = who_ ? fmt::format(" (zapped by {})", who_()) : std::string();
  mm.pageTable().forEachLeaf(start, end, [&](VirtAddr va, PtLevel level, uint64_t) {
    note(staleAfterZap_, fmt::format("invariant 2: {} leaf at {:#x} survived a zap of mm {}{}",
                                     levelName(level), va.value(), mm.id(), by));
  });
  // Sample the TLBs: the first and last page and every 2 MiB in between.
  const uint64_t step = std::max<uint64_t>(kPmdSize, (end - start) / 512);
  for (unsigned c = 0; c < kernel_.machine().cpuCount(); ++c) {
    Cpu& cpu = kernel_.machine().cpu(c);
    auto sample = [&](VirtAddr va) {
      if (cpu.tlbTranslates(mm.id(), va))
        note(staleAfterZap_,
             fmt::format("invariant 2: CPU {} still translates {:#x} after a zap of mm {}{}", c,
                         va.value(), mm.id(), by));
    };
    for (uint64_t off = 0; off < end - start; off += step) sample(start + off);
    sample(end - kPageSize);
  }
}

void InvariantMonitor::checkEntries(const std::vector<std::shared_ptr<Process>>& processes) {
  for (const auto& p : processes) {
    if (p->exited()) continue;
    Mm& mm = p->mm();
    ReadGuard mmap(mm.mmapLock());
    forEachUncoveredLeaf(mm, [&](VirtAddr va, PtLevel level) {
      note(wrongEntries_, fmt::format("invariant 4: {} leaf at {:#x} of pid {} lies in no VMA",
                                      levelName(level), va.value(), p->pid()));
    });
    for (const auto& dev : kernel_.devices()) {
      for (Vma* vma : mm.vmasMapping(dev->inode().mapping())) {
        if (vma->ops() != &dev->pci().design()) continue;  // a device-specific region
        const Pfn start = expectedStartPfn(*dev, *vma);
        mm.pageTable().forEachLeaf(
            vma->start(), vma->end(), [&](VirtAddr va, PtLevel level, uint64_t entry) {
              const Pfn want = start + ((va - vma->start()) >> kPageShift);
              const bool inside = va >= vma->start() && va + levelSize(level) <= vma->end();
              // What the MMU uses: a huge leaf's pfn with its low bits ignored.
              const uint64_t pages = levelSize(level) >> kPageShift;
              const Pfn used(pte::pfnOf(entry).value() & ~(pages - 1));
              if (used != want || !inside)
                note(wrongEntries_, fmt::format("invariant 4: {} leaf at {:#x} maps pfn {:#x}, "
                                                "expected {:#x}{}",
                                                levelName(level), va.value(), used.value(),
                                                want.value(), inside ? "" : " (crosses its VMA)"));
            });
      }
    }
  }
}

void InvariantMonitor::checkLeaks(const std::vector<std::shared_ptr<Process>>& processes) {
  for (const auto& p : processes) {
    if (!p->exited()) continue;
    if (p->mm().pageTable().pgtablesBytes() != 0)
      note(leaks_, fmt::format("invariant 6: pid {} kept {} bytes of page tables", p->pid(),
                               p->mm().pageTable().pgtablesBytes()));
    if (p->mm().mapCount() != 0)
      note(leaks_, fmt::format("invariant 6: pid {} kept {} VMAs", p->pid(), p->mm().mapCount()));
  }
  bool allExited = true;
  for (const auto& p : processes) allExited = allExited && p->exited();
  if (!allExited) return;
  for (const auto& dev : kernel_.devices()) {
    AddressSpace& mapping = dev->inode().mapping();
    ReadGuard i(mapping.iMmapRwsem());
    if (mapping.vmaCount() != 0)
      note(leaks_, fmt::format("invariant 6: {} still has {} i_mmap nodes", dev->name(),
                               mapping.vmaCount()));
  }
}

InvariantCounts InvariantMonitor::counts() const {
  InvariantCounts c;
  c.decodeViolations = kernel_.pciHost().decodeViolationCount() - decodeBase_;
  c.staleAfterZap = staleAfterZap_.load();
  c.wrongEntries = wrongEntries_.load();
  const uint64_t reports = lockdep::reportCount();
  c.lockdepReports =
      reports >= lockdepBase_ ? reports - lockdepBase_ : reports;  // cleared meanwhile
  c.leaks = leaks_.load();
  c.dmaDecodeViolations = kernel_.iommu().dmaDecodeViolationCount() - dmaDecodeBase_;
  return c;
}

std::vector<std::string> InvariantMonitor::findings() const {
  std::lock_guard g(findingsMu_);
  return findings_;
}

}  // namespace vfiomm
