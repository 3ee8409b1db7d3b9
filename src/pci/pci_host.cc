#include "pci/pci_host.h"

#include <algorithm>
#include <utility>

#include "base/assert.h"

namespace vfiomm {

namespace {

constexpr unsigned kResources = kPciStdNumBars + 1;  // the BARs and the ROM

uint64_t resourceLen(const PciDevice& dev, unsigned resource) {
  return resource == kPciRomResource ? dev.romLen() : dev.barLen(resource);
}

// A ROM BAR holds a 32-bit address; a BAR's window follows its type.
PciWindow windowOf(const PciDevice& dev, unsigned resource) {
  if (resource == kPciRomResource) return PciWindow::kMem32;
  if (dev.barIsIo(resource)) return PciWindow::kIo;
  return dev.barIs64(resource) ? PciWindow::kMem64 : PciWindow::kMem32;
}

std::optional<uint64_t> fixedStart(const ResourcePlacement& placement, unsigned resource) {
  return resource == kPciRomResource ? placement.rom : placement.bars[resource];
}

bool fitsRegister(const PciDevice& dev, unsigned resource, uint64_t start) {
  const uint64_t len = resourceLen(dev, resource);
  if (!isAligned(start, len)) return false;
  return windowOf(dev, resource) != PciWindow::kMem32 || start + len <= (uint64_t{1} << 32);
}

bool isMemoryResource(const PciDevice& dev, unsigned resource) {
  return resource == kPciRomResource ? dev.romLen() != 0 : dev.barIsMem(resource);
}

}  // namespace

PciHost::PciHost(Machine& machine, const HostBridgeWindows& windows)
    : machine_(machine), allocator_(windows) {}

PciHost::~PciHost() {
  for (Node& node : nodes_)
    for (auto& region : node.regions)
      if (region) machine_.unregisterRegion(*region);
}

PciBus& PciHost::addBus(const PciBusConfig& config) {
  buses_.push_back(std::make_unique<PciBus>(config));
  return *buses_.back();
}

Result<PciHost::Starts> PciHost::place(PciAllocator& allocator, const PciDevice& dev,
                                       const ResourcePlacement& placement) {
  Starts starts;
  std::vector<unsigned> pending;
  for (unsigned r = 0; r < kResources; ++r) {
    if (resourceLen(dev, r) == 0) continue;
    const std::optional<uint64_t> fixed = fixedStart(placement, r);
    if (!fixed) {
      pending.push_back(r);
      continue;
    }
    if (!fitsRegister(dev, r, *fixed)) return fail(Errno::kEINVAL);
    if (Status st = allocator.reserve(windowOf(dev, r), *fixed, resourceLen(dev, r)); !st)
      return fail(st.error());
    starts[r] = fixed;
  }
  // Largest first: naturally aligned ranges then pack without holes.
  std::stable_sort(pending.begin(), pending.end(), [&](unsigned a, unsigned b) {
    return resourceLen(dev, a) > resourceLen(dev, b);
  });
  for (unsigned r : pending) {
    const Result<uint64_t> start = allocator.allocate(windowOf(dev, r), resourceLen(dev, r));
    if (!start) return fail(start.error());
    starts[r] = *start;
  }
  return starts;
}

Result<PciDevice*> PciHost::addDevice(PciBus& bus, PciDeviceConfig config,
                                      const ResourcePlacement& placement) {
  VFIOMM_ASSERT_MSG(std::any_of(buses_.begin(), buses_.end(),
                                [&](const std::unique_ptr<PciBus>& b) { return b.get() == &bus; }),
                    "the bus belongs to another host");
  Node node{std::make_unique<PciDevice>(std::move(config)), {}};
  // Placed on a copy, so that a failure claims nothing.
  PciAllocator trial = allocator_;
  const Result<Starts> starts = place(trial, *node.device, placement);
  if (!starts) return fail(starts.error());
  allocator_ = std::move(trial);

  for (unsigned r = 0; r < kResources; ++r) {
    if (!(*starts)[r]) continue;
    node.device->assignResource(r, *(*starts)[r]);
    if (!isMemoryResource(*node.device, r)) continue;
    node.regions[r] = std::make_unique<BarRegion>(*node.device, r);
    machine_.registerRegion(*node.regions[r]);
  }
  bus.addDevice(*node.device);
  nodes_.push_back(std::move(node));
  return nodes_.back().device.get();
}

const PciHost::Node& PciHost::nodeOf(const PciDevice& dev) const {
  const auto it = std::find_if(nodes_.begin(), nodes_.end(),
                               [&](const Node& n) { return n.device.get() == &dev; });
  VFIOMM_ASSERT_MSG(it != nodes_.end(), "the device belongs to another host");
  return *it;
}

BarRegion* PciHost::barRegion(const PciDevice& dev, unsigned resource) const {
  VFIOMM_ASSERT(resource < kResources);
  return nodeOf(dev).regions[resource].get();
}

uint64_t PciHost::decodeViolationCount() const {
  uint64_t total = 0;
  for (const Node& node : nodes_)
    for (const auto& region : node.regions)
      if (region) total += region->decodeViolationCount();
  return total;
}

}  // namespace vfiomm
