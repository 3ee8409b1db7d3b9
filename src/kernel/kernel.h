// Kernel: one simulated system — the machine (CPUs, physical memory), the
// PCI host, the vfio devices with their groups and dev_sets, the device
// nodes under /dev, the kernel profile and the mapping design — and the
// processes running on it. Tests and the simulator build one, add devices,
// spawn processes (Process::spawn) and then talk to it only through Process
// (uapi/, the layer above: the kernel side knows no user-space object).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "fs/inode.h"
#include "fs/vfio_fs.h"
#include "hw/machine.h"
#include "iommu/iommu.h"
#include "kernel/kernel_profile.h"
#include "mm/oom_kill.h"
#include "mm/pat_memtype.h"
#include "mm/system_ram.h"
#include "mm/user_struct.h"
#include "mm/vm_commit.h"
#include "pci/pci_host.h"
#include "sync/kernel_context.h"
#include "vfio/mapping_design.h"
#include "vfio/vfio_iommu_type1.h"

namespace vfiomm {

class PciBus;
class PciDevice;
class VfioDevice;
class VfioDeviceSet;
class VfioGroup;

struct KernelConfig {
  unsigned cpus = 4;
  DesignKind design = DesignKind::kHugeFault;
  // Empty: the design's own era (mappingdesign.h defaultProfile()).
  std::string profile;
  // A whole profile, e.g. a named one with a switch changed (mm-pfnmap.md
  // §14: `linux-6.1` with fork_open_before_copy = no); wins over `profile`.
  std::optional<KernelProfile> profileOverride;
  DesignOptions designOptions;
  ThpEnabled thp = ThpEnabled::kAlways;
  // MemTotal, SwapTotal and the overcommit sysctls (vfio-uapi.md §10).
  HostMemory memory;
  // Every CPU's TLB (the default: a Golden Cove STLB, docs/tlb.md).
  TlbGeometry tlb;
  // vfio_iommu_type1's module parameters.
  Type1Params type1;
  // Page-table memory shared with other kernels built one after another
  // (MachineConfig::pageTables); null: the kernel's own.
  PageTableArena* pageTables = nullptr;
};

class Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> create(const KernelConfig& config);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // This kernel's counters, tracer and lockdep (KernelContext). Setup calls
  // and every Process call bind it themselves; code that reaches into the
  // kernel's objects directly (tests, monitors) binds it with a Scope.
  KernelContext& context() { return *context_; }
  CounterSet& counters() { return context_->counters(); }

  Machine& machine() { return machine_; }
  PciHost& pciHost() { return pciHost_; }
  // The host's ordinary memory (frames for pinned anonymous pages) and the
  // IOMMU every device's DMA goes through.
  SystemRam& systemRam() { return systemRam_; }
  Iommu& iommu() { return iommu_; }
  // The vfio pseudo filesystem the devices' inodes come from.
  VfioFs& vfioFs() { return vfioFs_; }
  const KernelProfile& profile() const { return profile_; }
  const KernelConfig& config() const { return config_; }
  // vm_committed_as and __vm_enough_memory() of the whole system.
  VmCommit& vmCommit() { return vmCommit_; }
  // x86 PAT's memtype reservations of the whole system.
  PatMemtype& patMemtype() { return patMemtype_; }
  // pagefault_out_of_memory()'s rate limit, one per system.
  OomKill& oomKill() { return oomKill_; }
  // The user every process runs as (the model has no uids): its
  // user_struct, whose locked_vm iommufd charges.
  UserStruct& user() { return user_; }

  PciBus& addBus(uint8_t number, bool behindBridge = true, bool slotReset = false);
  PciBus& addBus(const PciBusConfig& config);
  // Adds a PCI device, binds it to vfio-pci and gives it a group (one per
  // device unless `group` names an existing one) and a dev_set (one per
  // bus). Returns the vfio device, reachable at /dev/vfio/<group> and
  // /dev/vfio/devices/vfio<N>.
  Result<VfioDevice*> addVfioDevice(PciBus& bus, PciDeviceConfig config,
                                    const ResourcePlacement& placement = {}, int group = -1);
  // conformance.md's Standard device D on a fresh bus; once per kernel.
  VfioDevice& addStandardDevice();

  // Path lookups for Process::open. The device tables they read are only
  // changed by the setup calls above, which must not run concurrently
  // with syscalls (docs/api.md, "Concurrency").
  VfioGroup* groupByPath(const std::string& path);
  VfioDevice* deviceByCdevPath(const std::string& path);
  std::string cdevPath(const VfioDevice& dev) const;
  std::string groupPath(const VfioDevice& dev) const;
  // The inode of the device node /dev/vfio/devices/vfio<N> (devtmpfs),
  // made with the device, as device_create() makes the node.
  Inode& cdevInode(const VfioDevice& dev);
  const std::vector<std::unique_ptr<VfioDevice>>& devices() const { return devices_; }

  // alloc_pid(): unique across every host thread that spawns or forks.
  int nextPid() { return nextPid_.fetch_add(1, std::memory_order_relaxed); }
  // The id an iommufd context gets at open("/dev/iommu").
  int nextIommufdId() { return nextIommufdId_.fetch_add(1, std::memory_order_relaxed); }
  // One simulated thread runs on a CPU at a time.
  std::mutex& cpuRunLock(unsigned cpu) { return *cpuRun_.at(cpu); }

 private:
  Kernel(const KernelConfig& config, KernelProfile profile, std::shared_ptr<KernelContext> context);

  // First: everything below may reach it while it is built and torn down.
  // Shared with the thread that created the kernel while it runs it there
  // (KernelContext::adopt()).
  const std::shared_ptr<KernelContext> context_;
  const KernelConfig config_;
  const KernelProfile profile_;
  Machine machine_;
  VmCommit vmCommit_;
  PatMemtype patMemtype_;
  OomKill oomKill_;
  UserStruct user_;
  PciHost pciHost_;
  SystemRam systemRam_;
  Iommu iommu_;
  VfioFs vfioFs_;
  Inode anonInode_;  // anon_inode_inode: what a group's device fds point at
  std::map<uint8_t, PciBus*> buses_;
  std::vector<std::unique_ptr<VfioDevice>> devices_;
  std::vector<std::unique_ptr<Inode>> cdevInodes_;  // devices_[i]'s node
  std::vector<std::unique_ptr<VfioGroup>> groups_;
  // What a dev_set is shared by (vfio_pci_core_register_device()): the
  // bus number, and the slot (kDevSetWholeBus: the whole bus; for a
  // root-bus device, kDevSetOwnDevice + its devfn: itself alone).
  static constexpr int kDevSetWholeBus = -1;
  static constexpr int kDevSetOwnDevice = 0x100;
  std::map<std::pair<uint8_t, int>, std::unique_ptr<VfioDeviceSet>> devSets_;
  std::vector<std::unique_ptr<std::mutex>> cpuRun_;
  std::atomic<int> nextPid_{1000};
  std::atomic<int> nextIommufdId_{1};

  uint8_t nextBus_ = 1;
};

}  // namespace vfiomm
