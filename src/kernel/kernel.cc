#include "kernel/kernel.h"

#include <fmt/format.h>

#include "base/assert.h"
#include "pci/pci_bus.h"
#include "pci/standard_device.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_device_set.h"
#include "vfio/vfio_group.h"

namespace vfiomm {

namespace {

// devtmpfs's st_dev (0:5 on a typical x86 boot) and the inode numbers of
// the vfio device nodes under it: boot dependent in Linux, fixed here.
constexpr uint32_t kDevtmpfsDev = makeDev(0, 5);
constexpr uint64_t kCdevFirstIno = 1001;
// anon_inode_inode: made on the anon_inodefs mount (0:14 on a typical boot).
constexpr uint32_t kAnonInodeDev = makeDev(0, 14);

}  // namespace

Result<std::unique_ptr<Kernel>> Kernel::create(const KernelConfig& config) {
  const std::string name =
      config.profile.empty() ? std::string(defaultProfile(config.design)) : config.profile;
  auto profile = config.profileOverride ? config.profileOverride : KernelProfile::byName(name);
  if (!profile) return fail(Errno::kEINVAL);
  // The seeded bugs that live in mm rather than in a design.
  profile->mm.forkCopiesBeforeLink = config.designOptions.forkCopiesBeforeLink;
  profile->mm.faultRetryReusesVma = config.designOptions.faultRetryReusesVma;
  profile->mm.gatherWithoutNestedFlush = config.designOptions.gatherWithoutNestedFlush;
  if (config.cpus == 0 || config.cpus > Machine::kMaxCpus) return fail(Errno::kEINVAL);
  if (config.memory.ramBytes < kPageSize) return fail(Errno::kEINVAL);
  auto context = std::make_shared<KernelContext>();
  std::unique_ptr<Kernel> kernel;
  {
    const KernelContext::Scope in(*context);
    kernel.reset(new Kernel(config, *profile, context));
  }
  KernelContext::adopt(context);  // the creating thread runs it, if it runs none
  return kernel;
}

Kernel::Kernel(const KernelConfig& config, KernelProfile profile,
               std::shared_ptr<KernelContext> context)
    : context_(std::move(context)),
      config_(config),
      profile_(std::move(profile)),
      machine_(MachineConfig{config.cpus, config.tlb, config.pageTables}),
      vmCommit_(config.memory, machine_.log()),
      patMemtype_(machine_.log()),
      oomKill_(machine_.log()),
      pciHost_(machine_),
      systemRam_(machine_, {config.memory.hugepages2M, config.memory.hugepages1G}),
      iommu_(machine_),
      anonInode_(1, kAnonInodeDev) {
  for (unsigned i = 0; i < config.cpus; ++i) cpuRun_.push_back(std::make_unique<std::mutex>());
}

// The vfio objects go first and under the kernel's context, as module exit
// unbinds and frees the devices before the hardware disappears.
Kernel::~Kernel() {
  {
    const KernelContext::Scope in(*context_);
    devSets_.clear();
    groups_.clear();
    devices_.clear();
    cdevInodes_.clear();
  }
  KernelContext::release(*context_);
}

PciBus& Kernel::addBus(uint8_t number, bool behindBridge, bool slotReset) {
  return addBus(PciBusConfig{number, behindBridge, slotReset, 0});
}

PciBus& Kernel::addBus(const PciBusConfig& config) {
  const KernelContext::Scope in(*context_);
  const uint8_t number = config.number;
  PciBus& bus = pciHost_.addBus(config);
  buses_[number] = &bus;
  if (number >= nextBus_) nextBus_ = static_cast<uint8_t>(number + 1);
  return bus;
}

Result<VfioDevice*> Kernel::addVfioDevice(PciBus& bus, PciDeviceConfig config,
                                          const ResourcePlacement& placement, int group) {
  const KernelContext::Scope in(*context_);
  auto pdev = pciHost_.addDevice(bus, std::move(config), placement);
  if (!pdev) return fail(pdev.error());
  auto dev = VfioDevice::create(**pdev, machine_, vfioFs_, profile_.vfio, config_.design,
                                config_.designOptions);
  if (!dev) return fail(dev.error());
  VfioDevice* d = dev->get();
  devices_.push_back(std::move(*dev));
  cdevInodes_.push_back(std::make_unique<Inode>(kCdevFirstIno + devices_.size() - 1, kDevtmpfsDev));
  VfioGroup* g = nullptr;
  for (auto& existing : groups_)
    if (existing->id() == group) g = existing.get();
  if (g == nullptr) {
    groups_.push_back(std::make_unique<VfioGroup>(
        group >= 0 ? group : static_cast<int>(groups_.size()), anonInode_));
    g = groups_.back().get();
  }
  g->addDevice(*d);
  // vfio_pci_core_register_device()'s dev_set: a root-bus device alone, a
  // device whose slot can be reset with that slot, any other with its whole
  // bus: what a hot reset of it reaches.
  const PciDevice& p = d->pdev();
  int scope = kDevSetWholeBus;
  if (bus.isRoot())
    scope = kDevSetOwnDevice + (p.slot() << 3 | p.function());
  else if (bus.slotResetAvailable())
    scope = p.slot();
  std::unique_ptr<VfioDeviceSet>& set = devSets_[{bus.number(), scope}];
  if (set == nullptr) set = std::make_unique<VfioDeviceSet>(bus);
  set->addDevice(*d);
  return d;
}

VfioDevice& Kernel::addStandardDevice() {
  PciBus& bus = addBus(nextBus_);
  auto dev = addVfioDevice(bus, standardDeviceConfig(bus.number()), standardDevicePlacement());
  VFIOMM_ASSERT_MSG(dev.has_value(),
                    "Standard device D is added once per kernel (its addresses are fixed)");
  return **dev;
}

VfioGroup* Kernel::groupByPath(const std::string& path) {
  for (auto& g : groups_)
    if (path == fmt::format("/dev/vfio/{}", g->id())) return g.get();
  return nullptr;
}

VfioDevice* Kernel::deviceByCdevPath(const std::string& path) {
  for (auto& d : devices_)
    if (path == cdevPath(*d)) return d.get();
  return nullptr;
}

std::string Kernel::cdevPath(const VfioDevice& dev) const {
  for (size_t i = 0; i < devices_.size(); ++i)
    if (devices_[i].get() == &dev) return fmt::format("/dev/vfio/devices/vfio{}", i);
  return {};
}

Inode& Kernel::cdevInode(const VfioDevice& dev) {
  for (size_t i = 0; i < devices_.size(); ++i)
    if (devices_[i].get() == &dev) return *cdevInodes_[i];
  assertFailed("cdevInode", "a device of another kernel", SourceLocation::current());
}

std::string Kernel::groupPath(const VfioDevice& dev) const {
  return dev.group() != nullptr ? fmt::format("/dev/vfio/{}", dev.group()->id()) : std::string();
}

}  // namespace vfiomm
