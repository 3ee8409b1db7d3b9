// PciBus: the devices behind one bridge (or a root bus), and the resets the
// bridge can do to them. A hot reset reaches every device of its scope —
// the slot when the bridge's hotplug slot can reset itself, otherwise the
// whole bus (secondary bus reset) — which is why vfio groups such devices
// into one dev_set. A root bus has no bridge above it: no slot or bus reset.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.h"
#include "pci/pci_device.h"

namespace vfiomm {

struct PciBusConfig {
  uint8_t number = 0;
  // Below a root port or switch port, which can pulse a secondary bus reset.
  bool behindBridge = true;
  // That port's hotplug slot can reset its own devices
  // (pci_probe_reset_slot() == 0). Needs behindBridge.
  bool slotReset = false;
  // The DEVCAP2 AtomicOp completer widths of the root port above, when the
  // path to it routes AtomicOps (pci_enable_atomic_ops_to_root()).
  uint32_t rootPortAtomicCompleter = 0;
};

class PciBus {
 public:
  explicit PciBus(const PciBusConfig& config);
  PciBus(const PciBus&) = delete;
  PciBus& operator=(const PciBus&) = delete;

  uint8_t number() const { return config_.number; }
  bool isRoot() const { return !config_.behindBridge; }
  bool busResetAvailable() const { return config_.behindBridge; }
  bool slotResetAvailable() const { return config_.slotReset; }
  uint32_t rootPortAtomicCompleter() const {
    return config_.behindBridge ? config_.rootPortAtomicCompleter : 0;
  }

  // While the topology is built, before the devices are used: the device's
  // bus number is this bus's and its slot.function is free.
  void addDevice(PciDevice& dev);
  const std::vector<PciDevice*>& devices() const { return devices_; }

  // The devices a hot reset of `dev` (on this bus) reaches: those in its
  // slot when slot reset is available, else every device of the bus; none
  // when neither reset is possible.
  std::vector<PciDevice*> resetScope(const PciDevice& dev) const;

  // pci_reset_bus(dev): -ENOTTY when resetScope(dev) is empty; -EAGAIN when
  // the device lock of any device in it is held (nothing is reset then).
  // Otherwise every device of the scope is saved and disabled, reset, and
  // restored — restored even when the reset fails, whose error is then
  // returned, as Linux does when the link does not come back (RESET-09).
  Status resetBus(const PciDevice& dev);

  // Makes the following resets fail with `err` (e.g. -ENOTTY: the link
  // does not come back); nullopt makes them succeed again.
  void setResetFailure(std::optional<Errno> err);

 private:
  // pci_bus_trylock() / pci_bus_unlock() over a scope.
  static bool tryLockAll(const std::vector<PciDevice*>& scope);
  static void unlockAll(const std::vector<PciDevice*>& scope);

  const PciBusConfig config_;
  std::vector<PciDevice*> devices_;
  std::atomic<int> resetFailure_{0};  // an Errno value; 0: resets succeed
};

}  // namespace vfiomm
