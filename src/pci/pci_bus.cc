#include "pci/pci_bus.h"

#include <algorithm>
#include <iterator>

#include "base/assert.h"
#include "base/counter.h"
#include "sync/sched_hook.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(busResetCounter, "pci.bus_reset", "secondary bus and slot resets performed");

}  // namespace

PciBus::PciBus(const PciBusConfig& config) : config_(config) {
  VFIOMM_ASSERT_MSG(!config.slotReset || config.behindBridge, "a hotplug slot sits below a bridge");
}

void PciBus::addDevice(PciDevice& dev) {
  VFIOMM_ASSERT_MSG(dev.busNumber() == number(), "the device belongs to another bus");
  const bool taken = std::any_of(devices_.begin(), devices_.end(), [&](const PciDevice* d) {
    return d->slot() == dev.slot() && d->function() == dev.function();
  });
  VFIOMM_ASSERT_MSG(!taken, "two devices at one slot.function");
  devices_.push_back(&dev);
  dev.setBus(this);
}

std::vector<PciDevice*> PciBus::resetScope(const PciDevice& dev) const {
  VFIOMM_ASSERT_MSG(std::find(devices_.begin(), devices_.end(), &dev) != devices_.end(),
                    "the device is not on this bus");
  std::vector<PciDevice*> scope;
  if (!busResetAvailable()) return scope;
  std::copy_if(
      devices_.begin(), devices_.end(), std::back_inserter(scope),
      [&](const PciDevice* d) { return !slotResetAvailable() || d->slot() == dev.slot(); });
  return scope;
}

// The analysis cannot follow a set of locks known only at run time.
bool PciBus::tryLockAll(const std::vector<PciDevice*>& scope) NO_THREAD_SAFETY_ANALYSIS {
  for (auto it = scope.begin(); it != scope.end(); ++it) {
    if ((*it)->deviceLock().tryLock()) continue;
    unlockAll(std::vector<PciDevice*>(scope.begin(), it));
    return false;
  }
  return true;
}

// As tryLockAll().
void PciBus::unlockAll(const std::vector<PciDevice*>& scope) NO_THREAD_SAFETY_ANALYSIS {
  for (auto it = scope.rbegin(); it != scope.rend(); ++it) (*it)->deviceLock().unlock();
}

Status PciBus::resetBus(const PciDevice& dev) {
  const std::vector<PciDevice*> scope = resetScope(dev);
  if (scope.empty()) return fail(Errno::kENOTTY);
  if (!tryLockAll(scope)) return fail(Errno::kEAGAIN);
  busResetCounter.add();
  for (PciDevice* d : scope) d->saveAndDisable();
  // Every device of the scope is off until restored: a scheduler may run
  // another CPU here.
  schedPoint("pci.bus_reset");
  for (PciDevice* d : scope) d->hardwareReset();
  for (PciDevice* d : scope) d->restore();
  unlockAll(scope);
  const int failure = resetFailure_.load(std::memory_order_acquire);
  if (failure != 0) return fail(static_cast<Errno>(failure));
  return ok();
}

void PciBus::setResetFailure(std::optional<Errno> err) {
  resetFailure_.store(err ? toInt(*err) : 0, std::memory_order_release);
}

}  // namespace vfiomm
