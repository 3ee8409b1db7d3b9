// PciDevice: one PCI function as the hardware behaves — its configuration
// space (command register, BARs with sizing, ROM BAR, capability list, power
// management, PCIe FLR, MSI-X), its I/O-port BARs, its decode state — plus
// the kernel's struct pci_dev bookkeeping that goes with it: the assigned
// resources (pdev->resource[]), the device lock (pci_dev_lock) and the
// reset sequences of drivers/pci/pci.c (save, disable, reset, restore).
//
// This is the physical device only. What vfio shows its user (the virtual
// COMMAND register, vconfig) is vfio's; the memory behind the memory BARs is
// BarRegion's, which asks memoryDecodeEnabled() on every access.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/enum_names.h"
#include "base/result.h"
#include "hw/phys_mem_map.h"
#include "pci/bar_registers.h"
#include "pci/config_space.h"
#include "pci/pci_regs.h"
#include "pci/pci_vpd.h"
#include "sync/mutex.h"
#include "sync/spin_lock.h"
#include "sync/thread_annotations.h"

namespace vfiomm {

class PciBus;

// pci_lock (drivers/pci/access.c): serialises config-space accesses.
inline const LockClass kPciLockClass{"pci_lock"};
// The driver-core device mutex that pci_dev_lock() takes.
inline const LockClass kPciDevMutexClass{"&dev->mutex"};

enum class BarKind : uint8_t { kMem32, kMem64, kIo };
// As the device catalog and scenarios spell a BAR's `type:`.
inline constexpr EnumName<BarKind> kBarKindNames[] = {
    {BarKind::kMem32, "mem32"}, {BarKind::kMem64, "mem64"}, {BarKind::kIo, "io"}};

// The function-level reset methods the model has, named as sysfs
// reset_method names them (drivers/pci/pci.c pci_reset_fn_methods).
enum class PciResetMethod : uint8_t { kFlr, kAfFlr, kPm, kBus };

// What answers behind a memory BAR: memory that reads back what was
// written (a frame buffer, ivshmem's shared memory), or device registers
// (bar_registers.h).
enum class BarBacking : uint8_t { kMemory, kRegisters };

struct BarSpec {
  // A power of two: at least 16 bytes for memory (at most 2 GiB for kMem32),
  // 4 to 256 bytes for I/O.
  uint64_t size = 0;
  BarKind kind = BarKind::kMem32;
  bool prefetchable = false;  // memory BARs only
  BarBacking backing = BarBacking::kMemory;
  // kRegisters: the implemented registers, and what a read of any other
  // byte returns.
  std::vector<BarRegisterSpec> registers{};
  uint8_t unimplemented = 0;
};

struct PmCapSpec {
  // PMCSR.NoSoftRst. Set: D3hot -> D0 keeps the configuration (and there is
  // no PM reset). Clear: that transition resets the function.
  bool noSoftReset = true;
  // PMC advertises D1 / D2 support.
  bool d1 = false;
  bool d2 = false;
};

struct PcieCapSpec {
  bool flr = true;  // DEVCAP advertises function-level reset
  // DEVCAP2 AtomicOp completer widths (kPciExpDevcap2AtomicComp32/64/128).
  uint32_t atomicCompleter = 0;
};

struct MsiSpec {
  unsigned multipleMessageCapable = 0;  // log2 of the vectors the function asks for, 0..5
  bool addr64 = true;
};

// Where the MSI-X Pending Bit Array lives, when not right after the table.
struct MsixPba {
  unsigned bar = 0;
  uint32_t offset = 0;
};

struct MsixSpec {
  unsigned bar = 0;              // the table's BAR (BIR): a memory BAR
  uint32_t tableOffset = 0;      // 8-byte aligned
  unsigned vectors = 1;          // 1 to 2048, 16 bytes each
  std::optional<MsixPba> pba{};  // nullopt: the PBA follows the table
};

struct PciDeviceConfig {
  uint16_t vendorId = 0;
  uint16_t deviceId = 0;
  uint32_t classCode = 0x02'00'00;  // base class, subclass, prog-if: an Ethernet controller
  uint8_t bus = 0;
  uint8_t slot = 0;      // 0..31
  uint8_t function = 0;  // 0..7
  // A kMem64 BAR also takes the next slot, which must be empty.
  std::array<std::optional<BarSpec>, kPciStdNumBars> bars;
  std::optional<uint64_t> romSize;  // a power of two, 2 KiB to 16 MiB
  // The ROM holds a valid image (pciRomImageHeader(), half the ROM); without one
  // pci_map_rom() finds nothing and vfio reports the ROM empty.
  bool romImage = true;
  std::optional<PmCapSpec> pm;
  std::optional<PcieCapSpec> pcie;  // also makes config space 4 KiB
  std::optional<MsixSpec> msix;
  std::optional<MsiSpec> msi;
  // Interrupt Pin: 0 none, 1..4 INTA..INTD.
  uint8_t interruptPin = 1;
  // An SR-IOV physical function (an SR-IOV extended capability; needs pcie):
  // vfio then offers VFIO_DEVICE_FEATURE_PCI_VF_TOKEN.
  bool sriovPf = false;
  // An SR-IOV VF (pdev->no_command_memory): COMMAND.MEMORY is hardwired 0
  // and the PF controls decode, so the function decodes whenever it is
  // powered and out of reset. A VF has no I/O BAR.
  bool noCommandMemory = false;
  // The function's config space as dumped from real hardware (256 or 4096
  // bytes, config_dump.h), or empty for a device synthesized from the
  // fields above. With an image, the capabilities sit where the image has
  // them and every register the model does not interpret (revision,
  // subsystem IDs, vendor capabilities, ...) reads as in the image; the
  // fields above must describe the same device (the dump loader derives
  // them from it).
  std::vector<uint8_t> configImage{};
  // The VPD EEPROM behind a VPD capability of the config image (sysfs
  // `vpd` holds the same bytes); empty: blank, the core finds no VPD.
  std::vector<uint8_t> vpd{};
};

// Where the PBA of `m` is: given, or right after the table.
MsixPba msixPba(const MsixSpec& m);

// Where the MSI-X table lives (vdev->msix_bar, msix_offset, msix_size).
struct MsixTable {
  unsigned bar = 0;
  uint64_t offset = 0;
  uint64_t size = 0;  // vectors * PCI_MSIX_ENTRY_SIZE
};

class PciDevice;

// pci_store_saved_state(): a copy of a function's configuration that its
// driver keeps (vfio's pm_save) to write back with restoreState().
class PciSavedState {
 private:
  friend class PciDevice;
  explicit PciSavedState(const ConfigSpace& cfg) : cfg_(cfg) {}
  ConfigSpace cfg_;
};

class PciDevice {
 public:
  // Where a synthesized device's capabilities sit, when it has them; linked
  // in this order from PCI_CAPABILITY_LIST. A device built from a config
  // image has them where the image has them: ask findCapability().
  static constexpr uint16_t kPmCapOffset = 0x40;
  static constexpr uint16_t kMsixCapOffset = 0x50;
  static constexpr uint16_t kPcieCapOffset = 0x60;
  static constexpr uint16_t kMsiCapOffset = 0xa0;

  // The device as it comes out of power-on: COMMAND 0, BARs unassigned, D0.
  // An incoherent config is a bug of the caller (asserts).
  explicit PciDevice(PciDeviceConfig config);
  PciDevice(const PciDevice&) = delete;
  PciDevice& operator=(const PciDevice&) = delete;

  // pci_name(): "0000:01:00.0".
  const std::string& name() const { return name_; }
  const PciDeviceConfig& config() const { return config_; }
  uint8_t busNumber() const { return config_.bus; }
  uint8_t slot() const { return config_.slot; }
  uint8_t function() const { return config_.function; }
  bool noCommandMemory() const { return config_.noCommandMemory; }

  // --- configuration space ---------------------------------------------------

  // pdev->cfg_size: 4 KiB with a PCIe capability, 256 bytes without.
  uint32_t configSize() const { return powerOn_.size(); }
  // 1, 2 or 4 bytes, naturally aligned, inside config space. A bad size is
  // -EINVAL; a misaligned or out-of-range offset is what the kernel maps
  // PCIBIOS_BAD_REGISTER_NUMBER to, -EFAULT.
  Result<uint32_t> configRead(uint32_t offset, unsigned size) const EXCLUDES(cfgLock_);
  // Writes the writable bits and acts on them: COMMAND changes decode, PMCSR
  // changes the power state, DEVCTL.BCR_FLR starts an FLR when DEVCAP
  // advertises one (the bit always reads back 0).
  Status configWrite(uint32_t offset, unsigned size, uint32_t value) EXCLUDES(cfgLock_);

  // pci_find_capability() / pci_find_ext_capability(): the offset of the
  // first capability with `id`, walking the chain as the device has it.
  std::optional<uint16_t> findCapability(uint8_t id) const;
  std::optional<uint16_t> findExtCapability(uint16_t id) const;
  std::optional<uint16_t> pmCapOffset() const { return pmCap_; }
  std::optional<uint16_t> pcieCapOffset() const { return pcieCap_; }
  std::optional<uint16_t> msixCapOffset() const { return msixCap_; }
  std::optional<uint16_t> msiCapOffset() const { return msiCap_; }

  // --- physical state (lock free: BarRegion asks on every access) -------------

  // COMMAND.MEMORY set (or no_command_memory), power state below D3hot, and
  // not in reset.
  bool memoryDecodeEnabled() const;
  // memoryDecodeEnabled() and the ROM BAR's enable bit set.
  bool romDecodeEnabled() const;
  // COMMAND.IO set, below D3hot, not in reset.
  bool ioDecodeEnabled() const;
  PciPowerState powerState() const { return powerState_.load(std::memory_order_acquire); }
  // Between saveAndDisable() and restore() of a reset.
  bool inReset() const { return inReset_.load(std::memory_order_acquire); }
  // How many times the function went back to its power-on state (FLR, PM
  // reset, bus reset, D3hot -> D0 without NoSoftRst): what resets the
  // registers behind its BARs (BarRegisters).
  uint64_t resetCount() const { return resetCount_.load(std::memory_order_acquire); }

  // --- power management (the PCI core's side) -----------------------------------

  // pci_set_power_state(): D0 from any state; from D0 or a lighter state
  // only deeper (a shallower non-D0 target is -EINVAL); D1/D2 only when PMC
  // advertises them (-EIO); without a PM capability only D0. Coming back
  // from D3hot without NoSoftRst, the function lost its configuration and
  // the BARs are reprogrammed from the resources (pci_restore_bars), nothing
  // else: COMMAND stays 0 until someone restores the saved state.
  Status setPowerState(PciPowerState state) EXCLUDES(cfgLock_);
  // pci_save_state() + pci_store_saved_state().
  PciSavedState saveState() const EXCLUDES(cfgLock_);
  // pci_load_saved_state() + pci_restore_state(): the configuration written
  // back; the power state is left as it is.
  void restoreState(const PciSavedState& state) EXCLUDES(cfgLock_);

  // --- resources (pdev->resource[]) ---------------------------------------------

  // pci_assign_resource(): `resource` (a BAR index or kPciRomResource) gets
  // `start`, aligned to its size, and its base-address register is
  // programmed. Done by PciHost before the device is used; the resource then
  // stays for the device's life (a reset restores the register).
  void assignResource(unsigned resource, uint64_t start) EXCLUDES(cfgLock_);

  // pci_resource_start/len: 0 for an unimplemented BAR and for the upper
  // half of a 64-bit one. An I/O BAR's start is its port.
  uint64_t barStart(unsigned bar) const;
  uint64_t barLen(unsigned bar) const;
  bool barIsMem(unsigned bar) const;
  bool barIsIo(unsigned bar) const;
  bool barIs64(unsigned bar) const;
  bool barPrefetchable(unsigned bar) const;
  uint64_t romStart() const { return resourceStart_[kPciRomResource]; }
  uint64_t romLen() const { return config_.romSize.value_or(0); }
  std::optional<MsixTable> msixTable() const;

  // --- Vital Product Data (pci_read_vpd / pci_write_vpd) --------------------------

  // -ENODEV without a VPD capability or with a blank EEPROM (PciVpd).
  Result<uint32_t> readVpd(uint32_t pos);
  Status writeVpd(uint32_t pos, uint32_t value);

  // --- I/O-port BARs -----------------------------------------------------------------

  // An in/out instruction to BAR `bar` (an I/O BAR) at `offset`: 1, 2 or 4
  // bytes, aligned, inside the BAR, else -EINVAL. With I/O decode off nothing
  // answers: reads return all ones, writes are dropped.
  Result<uint32_t> ioRead(unsigned bar, uint64_t offset, unsigned size);
  Status ioWrite(unsigned bar, uint64_t offset, unsigned size, uint32_t value);

  // --- device lock and resets ----------------------------------------------------------

  // pci_dev_lock(): held across a reset; vfio trylocks it.
  Mutex& deviceLock() RETURN_CAPABILITY(deviceLock_) { return deviceLock_; }

  // The bus the device sits on (PciBus::addDevice sets it).
  PciBus* bus() const { return bus_; }
  void setBus(PciBus* bus) { bus_ = bus; }

  // pcie_has_flr(): a PCIe capability whose DEVCAP advertises FLR.
  bool hasFlr() const { return config_.pcie.has_value() && config_.pcie->flr; }
  // pci_af_flr(probe): an Advanced Features capability with both
  // Transactions Pending and FLR.
  bool hasAfFlr() const { return afFlr_; }
  // pci_pm_reset() is possible: a PM capability without NoSoftRst.
  bool pmResetAvailable() const { return config_.pm.has_value() && !config_.pm->noSoftReset; }
  // pci_reset_bus_function() is possible: the slot can reset a single
  // function, or the parent bridge can pulse a secondary bus reset that
  // reaches only this device (vfio-uapi.md §5).
  bool busResetFunctionAvailable() const;
  // The methods pci_try_reset_function() would try, in its order; empty:
  // -ENOTTY (dev->reset_methods).
  std::vector<PciResetMethod> resetMethods() const;
  bool resetFunctionAvailable() const { return !resetMethods().empty(); }

  // An FLR as pci_reset_function() runs it: state saved, decode off, the
  // function reset, state restored. -ENOTTY without DEVCAP FLR. Takes no
  // lock: the hardware does not know about the kernel's (a DEVCTL write
  // starts the same sequence).
  Status flr() EXCLUDES(cfgLock_);
  // pci_try_reset_function(): -ENOTTY when no method applies; -EAGAIN when
  // the device lock is held (by anyone, the caller included); else the
  // first of resetMethods() (FLR, PM reset: D3hot and back to D0, or a
  // secondary bus reset), with the state saved and restored around it.
  Status tryResetFunction() EXCLUDES(cfgLock_);

  // The steps of every reset, for PciBus's bus and slot resets; the caller
  // serialises them (pci_bus_lock). saveAndDisable() is
  // pci_dev_save_and_disable(): the configuration is saved, the function
  // woken to D0, COMMAND cleared but for INTx disable, and the function is
  // in reset until restore(). hardwareReset() is the reset reaching the
  // function: config space back to its power-on values. restore() is
  // pci_dev_restore(): the saved configuration written back (in D0).
  void saveAndDisable() EXCLUDES(cfgLock_);
  void hardwareReset() EXCLUDES(cfgLock_);
  void restore() EXCLUDES(cfgLock_);

 private:
  Status checkConfigAccess(uint32_t offset, unsigned size) const;
  Status checkIoAccess(unsigned bar, uint64_t offset, unsigned size) const;
  // The function enters `target`; D3hot -> D0 without NoSoftRst resets the
  // configuration first.
  void enterPowerState(PciPowerState target) REQUIRES(cfgLock_);
  // A software write to PMCSR stored a requested state; apply it if the
  // function can make that transition (pmTransitionAllowed), else the
  // write is discarded.
  void applyPmcsrWrite(PciPowerState before) REQUIRES(cfgLock_);
  // PCI PM: D1/D2 only when PMC advertises them; out of a low-power state
  // only deeper, or back to D0.
  bool pmTransitionAllowed(PciPowerState from, PciPowerState to) const REQUIRES(cfgLock_);
  bool pmStateSupported(PciPowerState state) const REQUIRES(cfgLock_);
  // pci_restore_bars(): every assigned BAR register reprogrammed.
  void restoreBars() REQUIRES(cfgLock_);
  PciPowerState pmcsrState() const REQUIRES(cfgLock_);
  void setPmcsrState(PciPowerState state) REQUIRES(cfgLock_);
  // The function's internal reset: config space back to power-on.
  void resetToPowerOn() REQUIRES(cfgLock_);
  // Mirrors the registers that gate decode into the atomics BarRegion reads.
  void syncDecodeState() REQUIRES(cfgLock_);
  // The reset step of __pci_reset_function_locked(), between
  // saveAndDisable() and restore().
  void functionLevelReset() EXCLUDES(cfgLock_);
  // An FLR started by a config write, with the state saved and restored
  // around it.
  void resetFunctionNow() EXCLUDES(cfgLock_);
  void pmReset() EXCLUDES(cfgLock_);
  void secondaryBusReset() EXCLUDES(cfgLock_);

  const PciDeviceConfig config_;
  const std::string name_;
  // What the function's config space holds after power-on or a reset.
  const ConfigSpace powerOn_;
  // Found once in powerOn_: a chain never changes.
  const std::optional<uint16_t> pmCap_;
  const std::optional<uint16_t> pcieCap_;
  const std::optional<uint16_t> msixCap_;
  const std::optional<uint16_t> msiCap_;
  const bool afFlr_;
  // Present with a VPD capability.
  const std::unique_ptr<PciVpd> vpd_;

  mutable SpinLock cfgLock_{kPciLockClass};
  ConfigSpace cfg_ GUARDED_BY(cfgLock_);
  // pci_save_state() of a reset in progress.
  std::optional<ConfigSpace> saved_ GUARDED_BY(cfgLock_);

  std::atomic<bool> memorySpace_{false};
  std::atomic<bool> ioSpace_{false};
  std::atomic<bool> romEnabled_{false};
  std::atomic<PciPowerState> powerState_{PciPowerState::kD0};
  std::atomic<bool> inReset_{false};
  std::atomic<uint64_t> resetCount_{0};

  // Written by assignResource() before the device is shared, read-only after.
  std::array<uint64_t, kPciStdNumBars + 1> resourceStart_{};
  // The registers behind each I/O BAR (a BAR is at most 256 bytes).
  std::array<std::unique_ptr<HostPage>, kPciStdNumBars> ioPorts_;

  // device_lock(); config accesses under it take pci_lock.
  Mutex deviceLock_ ACQUIRED_BEFORE(cfgLock_){kPciDevMutexClass};
  // Set while the topology is built, before the device is shared.
  PciBus* bus_ = nullptr;
};

}  // namespace vfiomm
