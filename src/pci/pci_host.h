// PciHost: the host bridge and what hangs below it — buses, devices, and the
// BarRegions that put each device's memory BARs (and ROM) into the machine's
// physical address map. Adding a device places its resources (fixed
// addresses where the caller gives them, the allocator's otherwise, largest
// first) and registers its regions; I/O BARs get ports, which live in their
// own address space and are reached through the device, never through the
// physical map.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/result.h"
#include "hw/machine.h"
#include "pci/bar_region.h"
#include "pci/pci_allocator.h"
#include "pci/pci_bus.h"
#include "pci/pci_device.h"

namespace vfiomm {

// Fixed addresses for some of a device's resources (I/O BARs: ports); the
// others are allocated.
struct ResourcePlacement {
  std::array<std::optional<uint64_t>, kPciStdNumBars> bars;
  std::optional<uint64_t> rom;
};

class PciHost {
 public:
  explicit PciHost(Machine& machine, const HostBridgeWindows& windows = HostBridgeWindows{});
  // Takes every region out of the physical map before it is destroyed.
  ~PciHost();
  PciHost(const PciHost&) = delete;
  PciHost& operator=(const PciHost&) = delete;

  Machine& machine() const { return machine_; }

  PciBus& addBus(const PciBusConfig& config);

  // Creates the device on `bus` (whose number it must carry), places its
  // resources and registers a BarRegion for each memory BAR and the ROM.
  // -EINVAL: a fixed address is not aligned to its resource's size, or puts
  // a 32-bit one above 4 GiB; -EBUSY: a fixed range is taken; -ENOSPC: a
  // window is full. Nothing is added on failure.
  Result<PciDevice*> addDevice(PciBus& bus, PciDeviceConfig config,
                               const ResourcePlacement& placement = ResourcePlacement{});

  // The region of a memory BAR or the ROM (kPciRomResource) of a device
  // added here; nullptr for an I/O or unimplemented BAR.
  BarRegion* barRegion(const PciDevice& dev, unsigned resource) const;
  // Over every region of every device.
  uint64_t decodeViolationCount() const;

 private:
  using Starts = std::array<std::optional<uint64_t>, kPciStdNumBars + 1>;
  struct Node {
    std::unique_ptr<PciDevice> device;
    std::array<std::unique_ptr<BarRegion>, kPciStdNumBars + 1> regions;
  };

  // Addresses for every resource of `dev`, claimed in `allocator`.
  static Result<Starts> place(PciAllocator& allocator, const PciDevice& dev,
                              const ResourcePlacement& placement);
  const Node& nodeOf(const PciDevice& dev) const;

  Machine& machine_;
  PciAllocator allocator_;
  std::vector<std::unique_ptr<PciBus>> buses_;
  std::vector<Node> nodes_;
};

}  // namespace vfiomm
