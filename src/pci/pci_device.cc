#include "pci/pci_device.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <utility>
#include <vector>

#include "base/assert.h"
#include "base/byte_units.h"
#include "base/counter.h"
#include "pci/pci_bus.h"
#include "sync/sched_hook.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(flrCount, "pci.flr", "function-level resets performed");
VFIOMM_COUNTER(pmResetCount, "pci.pm_reset", "PM resets (D3hot and back to D0) performed");
VFIOMM_COUNTER(busResetFunctionCount, "pci.bus_reset_function",
               "function-level resets done by a secondary bus reset of a device alone on its bus");
VFIOMM_COUNTER(restoreStateCount, "pci.restore_state",
               "saved configurations written back by a driver (pci_restore_state)");
VFIOMM_COUNTER(ioAccessCount, "pci.io.access", "in/out accesses to I/O-port BARs");
VFIOMM_COUNTER(ioMasterAbortCount, "pci.io.master_abort",
               "I/O-port BAR accesses while I/O decode is off (reads all ones, writes dropped)");

constexpr uint16_t kCommandWritable = kPciCommandIo | kPciCommandMemory | kPciCommandMaster |
                                      kPciCommandParity | kPciCommandSerr | kPciCommandIntxDisable;
// What a VF lets software change: the PF owns its decode.
constexpr uint16_t kVfCommandWritable =
    kCommandWritable & static_cast<uint16_t>(~(kPciCommandIo | kPciCommandMemory));
// DEVCTL out of reset (PCIe base spec): relaxed ordering and no-snoop
// enabled, 512-byte read requests.
constexpr uint16_t kDevctlDefault =
    kPciExpDevctlRelaxEn | kPciExpDevctlNosnoopEn | kPciExpDevctlReadrq512B;

// The capabilities' fixed places must not overlap.
static_assert(PciDevice::kPmCapOffset + kPciPmSizeof <= PciDevice::kMsixCapOffset);
static_assert(PciDevice::kMsixCapOffset + kPciCapMsixSizeof <= PciDevice::kPcieCapOffset);
static_assert(PciDevice::kPcieCapOffset + kPciCapExpEndpointSizeofV2 <= PciDevice::kMsiCapOffset);
static_assert(PciDevice::kMsiCapOffset + kPciMsi64Sizeof <= kPciCfgSpaceSize);
// pci_find_capability()'s bound on a chain (PCI_FIND_CAP_TTL): a looping
// chain ends instead of spinning.
constexpr unsigned kFindCapTtl = 48;

uint32_t msixPbaSize(const MsixSpec& m) { return (m.vectors + 63) / 64 * 8; }

bool isMem(const BarSpec& b) { return b.kind != BarKind::kIo; }

}  // namespace

MsixPba msixPba(const MsixSpec& m) {
  return m.pba.value_or(MsixPba{m.bar, m.tableOffset + m.vectors * kPciMsixEntrySize});
}

namespace {

void validateBar(const PciDeviceConfig& c, unsigned bar) {
  const BarSpec& b = *c.bars[bar];
  VFIOMM_ASSERT_MSG(isPowerOfTwo(b.size), "a BAR's size is a power of two");
  switch (b.kind) {
    case BarKind::kIo:
      VFIOMM_ASSERT_MSG(b.size >= 4 && b.size <= 256, "an I/O BAR is 4 to 256 bytes");
      VFIOMM_ASSERT_MSG(!b.prefetchable, "an I/O BAR is not prefetchable");
      VFIOMM_ASSERT_MSG(!c.noCommandMemory, "a VF has no I/O BAR");
      break;
    case BarKind::kMem32:
      VFIOMM_ASSERT_MSG(b.size >= 16 && b.size <= 2 * kGiB, "a 32-bit BAR is 16 bytes to 2 GiB");
      break;
    case BarKind::kMem64:
      VFIOMM_ASSERT_MSG(b.size >= 16, "a memory BAR is at least 16 bytes");
      VFIOMM_ASSERT_MSG(bar + 1 < kPciStdNumBars && !c.bars[bar + 1],
                        "a 64-bit BAR needs the next slot empty");
      break;
  }
}

void validateMsix(const PciDeviceConfig& c) {
  const MsixSpec& m = *c.msix;
  VFIOMM_ASSERT_MSG(m.bar < kPciStdNumBars && c.bars[m.bar] && isMem(*c.bars[m.bar]),
                    "the MSI-X table lives in a memory BAR");
  VFIOMM_ASSERT_MSG(m.vectors >= 1 && m.vectors <= 2048, "MSI-X has 1 to 2048 vectors");
  VFIOMM_ASSERT_MSG(isAligned(m.tableOffset, 8), "the MSI-X table offset is 8-byte aligned");
  const MsixPba pba = msixPba(m);
  VFIOMM_ASSERT_MSG(pba.bar < kPciStdNumBars && c.bars[pba.bar] && isMem(*c.bars[pba.bar]),
                    "the MSI-X PBA lives in a memory BAR");
  VFIOMM_ASSERT_MSG(
      m.tableOffset + uint64_t{m.vectors} * kPciMsixEntrySize <= c.bars[m.bar]->size &&
          uint64_t{pba.offset} + msixPbaSize(m) <= c.bars[pba.bar]->size,
      "the MSI-X table and PBA fit in their BARs");
}

PciDeviceConfig validated(PciDeviceConfig c) {
  VFIOMM_ASSERT_MSG(c.slot < 32 && c.function < 8, "slot is 0..31, function 0..7");
  VFIOMM_ASSERT_MSG(c.classCode < (1U << 24), "the class code is 24 bits");
  for (unsigned bar = 0; bar < kPciStdNumBars; ++bar)
    if (c.bars[bar]) validateBar(c, bar);
  if (c.romSize)
    VFIOMM_ASSERT_MSG(isPowerOfTwo(*c.romSize) && *c.romSize >= 2048 && *c.romSize <= 16 << 20,
                      "a ROM is a power of two, 2 KiB to 16 MiB");
  if (c.msix) validateMsix(c);
  if (c.msi) VFIOMM_ASSERT_MSG(c.msi->multipleMessageCapable <= 5, "MSI asks for 1 to 32 vectors");
  VFIOMM_ASSERT_MSG(c.interruptPin <= 4, "Interrupt Pin is 0 (none) or INTA..INTD");
  VFIOMM_ASSERT_MSG(c.configImage.empty() || c.configImage.size() == kPciCfgSpaceSize ||
                        c.configImage.size() == kPciCfgSpaceExpSize,
                    "a config image is 256 or 4096 bytes");
  VFIOMM_ASSERT_MSG(!c.sriovPf || (c.pcie && !c.noCommandMemory),
                    "an SR-IOV PF is a PCIe function and not itself a VF");
  return c;
}

// A BAR's low register holds its type in the bits below the address; the
// address bits below the size are hardwired 0, which is how sizing works:
// write all ones, read back what stuck.
void setupBar(ConfigSpace& cs, unsigned bar, const BarSpec& b) {
  const uint32_t reg = pciBaseAddress(bar);
  const uint64_t sizeMask = ~(b.size - 1);
  uint32_t type = kPciBaseAddressSpaceIo;
  if (isMem(b))
    type = (b.kind == BarKind::kMem64 ? kPciBaseAddressMemType64 : 0) |
           (b.prefetchable ? kPciBaseAddressMemPrefetch : 0);
  cs.set(reg, 4, type);
  cs.setWritable(reg, 4,
                 static_cast<uint32_t>(sizeMask) &
                     (isMem(b) ? kPciBaseAddressMemMask : kPciBaseAddressIoMask));
  if (b.kind == BarKind::kMem64) cs.setWritable(reg + 4, 4, static_cast<uint32_t>(sizeMask >> 32));
}

// What software can change in each capability, wherever it sits.
void pmWritable(ConfigSpace& cs, uint32_t cap) {
  cs.setWritable(cap + kPciPmCtrl, 2, kPciPmCtrlStateMask);
}

void msixWritable(ConfigSpace& cs, uint32_t cap) {
  cs.setWritable(cap + kPciMsixFlags, 2, kPciMsixFlagsEnable | kPciMsixFlagsMaskall);
}

void pcieWritable(ConfigSpace& cs, uint32_t cap) {
  // BCR_FLR is a command, never stored: it reads back 0.
  cs.setWritable(cap + kPciExpDevctl, 2, static_cast<uint16_t>(~kPciExpDevctlBcrFlr));
  cs.setWritable(cap + kPciExpDevctl2, 2, kPciExpDevctl2AtomicReq);
}

// An AER capability: masks and severity read-write, the status registers
// latch errors until software writes 1 to them, ECRC enables read-write.
void aerWritable(ConfigSpace& cs, uint32_t cap) {
  cs.setWritable(cap + kPciErrUncorMask, 4, 0xffff'ffffU);
  cs.setWritable(cap + kPciErrUncorSever, 4, 0xffff'ffffU);
  cs.setWritable(cap + kPciErrCorMask, 4, 0xffff'ffffU);
  cs.setWritable(cap + kPciErrCap, 4, kPciErrCapEcrcGene | kPciErrCapEcrcChke);
  cs.setWriteOneToClear(cap + kPciErrUncorStatus, 4, 0xffff'ffffU);
  cs.setWriteOneToClear(cap + kPciErrCorStatus, 4, 0xffff'ffffU);
}

void msiWritable(ConfigSpace& cs, uint32_t cap) {
  cs.setWritable(cap + kPciMsiFlags, 2, kPciMsiFlagsEnable | kPciMsiFlagsQsize);
  cs.setWritable(cap + kPciMsiAddressLo, 4, ~uint32_t{3});
}

void setupPm(ConfigSpace& cs, const PmCapSpec& pm) {
  const uint32_t cap = PciDevice::kPmCapOffset;
  // Version 3, no PME.
  cs.set(cap + kPciPmPmc, 2,
         kPciPmCapVer3 | (pm.d1 ? kPciPmCapD1 : 0U) | (pm.d2 ? kPciPmCapD2 : 0U));
  cs.set(cap + kPciPmCtrl, 2, pm.noSoftReset ? kPciPmCtrlNoSoftReset : 0);
  pmWritable(cs, cap);
}

void setupMsix(ConfigSpace& cs, const MsixSpec& m) {
  const uint32_t cap = PciDevice::kMsixCapOffset;
  const MsixPba pba = msixPba(m);
  cs.set(cap + kPciMsixFlags, 2, (m.vectors - 1) & kPciMsixFlagsQsize);
  cs.set(cap + kPciMsixTable, 4, m.tableOffset | m.bar);
  cs.set(cap + kPciMsixPba, 4, pba.offset | pba.bar);
  msixWritable(cs, cap);
}

void setupPcie(ConfigSpace& cs, const PcieCapSpec& p) {
  const uint32_t cap = PciDevice::kPcieCapOffset;
  cs.set(cap + kPciExpFlags, 2, kPciExpFlagsVers2);
  cs.set(cap + kPciExpDevcap, 4, p.flr ? kPciExpDevcapFlr : 0);
  cs.set(cap + kPciExpDevctl, 2, kDevctlDefault);
  cs.set(cap + kPciExpDevcap2, 4, p.atomicCompleter);
  pcieWritable(cs, cap);
}

void setupMsi(ConfigSpace& cs, const MsiSpec& m) {
  const uint32_t cap = PciDevice::kMsiCapOffset;
  const auto mmc = static_cast<uint16_t>(m.multipleMessageCapable << 1);
  cs.set(cap + kPciMsiFlags, 2, mmc | (m.addr64 ? kPciMsiFlags64Bit : 0U));
  msiWritable(cs, cap);
}

// An SR-IOV extended capability header, alone in the extended list.
void setupSriov(ConfigSpace& cs) {
  cs.set(kPciExtCapStart, 4, uint32_t{kPciExtCapIdSriov} | (1U << 16));
}

// Each present capability at its fixed offset, chained from
// PCI_CAPABILITY_LIST in the order given.
void linkCapabilities(ConfigSpace& cs, const std::vector<std::pair<uint16_t, uint8_t>>& caps) {
  if (caps.empty()) return;
  cs.set(kPciStatus, 2, kPciStatusCapList);
  cs.set(kPciCapabilityList, 1, caps.front().first);
  for (size_t i = 0; i < caps.size(); ++i) {
    cs.set(caps[i].first + kPciCapListId, 1, caps[i].second);
    cs.set(caps[i].first + kPciCapListNext, 1, i + 1 < caps.size() ? caps[i + 1].first : 0U);
  }
}

// COMMAND, the BARs and the ROM BAR, as power-on leaves them: decode off,
// no address assigned, the type bits hardwired.
void setupHeader(ConfigSpace& cs, const PciDeviceConfig& c) {
  cs.set(kPciCommand, 2, 0);
  cs.setWritable(kPciCommand, 2, c.noCommandMemory ? kVfCommandWritable : kCommandWritable);
  for (unsigned bar = 0; bar < kPciStdNumBars; ++bar) {
    cs.set(pciBaseAddress(bar), 4, 0);
    if (c.bars[bar]) setupBar(cs, bar, *c.bars[bar]);
  }
  cs.set(kPciRomAddress, 4, 0);
  if (c.romSize)
    cs.setWritable(
        kPciRomAddress, 4,
        (static_cast<uint32_t>(~(*c.romSize - 1)) & kPciRomAddressMask) | kPciRomAddressEnable);
  cs.setWritable(kPciInterruptLine, 1, 0xff);
  cs.setWritable(kPciCacheLineSize, 1, 0xff);  // software-owned (UAPI-25)
}

std::optional<uint16_t> findCapabilityIn(const ConfigSpace& cs, uint8_t id) {
  if (!(cs.read(kPciStatus, 2) & kPciStatusCapList)) return std::nullopt;
  uint32_t pos = cs.read(kPciCapabilityList, 1);
  for (unsigned ttl = kFindCapTtl; ttl > 0 && pos >= 0x40; --ttl) {
    pos &= ~3U;
    if (cs.read(pos + kPciCapListId, 1) == id) return static_cast<uint16_t>(pos);
    pos = cs.read(pos + kPciCapListNext, 1);
  }
  return std::nullopt;
}

std::optional<uint16_t> findExtCapabilityIn(const ConfigSpace& cs, uint16_t id) {
  if (cs.size() <= kPciCfgSpaceSize) return std::nullopt;
  uint32_t pos = kPciExtCapStart;
  // (4096 - 256) / 8: the most headers the extended space can hold.
  for (unsigned ttl = (kPciCfgSpaceExpSize - kPciCfgSpaceSize) / 8; ttl > 0; --ttl) {
    const uint32_t header = cs.read(pos, 4);
    if (header == 0) return std::nullopt;
    if ((header & 0xffff) == id) return static_cast<uint16_t>(pos);
    pos = (header >> 20) & ~3U;
    if (pos < kPciExtCapStart) return std::nullopt;
  }
  return std::nullopt;
}

bool afFlrIn(const ConfigSpace& cs) {
  const auto af = findCapabilityIn(cs, kPciCapIdAf);
  constexpr uint32_t kBoth = kPciAfCapTp | kPciAfCapFlr;
  return af && (cs.read(*af + kPciAfCap, 1) & kBoth) == kBoth;
}

// Clears `bits` of the 16-bit register at `reg`.
void clearBits(ConfigSpace& cs, uint32_t reg, uint16_t bits) {
  cs.set(reg, 2, cs.read(reg, 2) & ~uint32_t{bits});
}

// A dumped function as it comes out of power-on: the image's bytes, with
// what software or the host had changed taken back (decode, addresses,
// enables, D-state, latched errors), and the writable bits of the
// registers the model acts on set where the image's chain puts them.
ConfigSpace imagePowerOnConfig(const PciDeviceConfig& c) {
  ConfigSpace cs(c.pcie ? kPciCfgSpaceExpSize : kPciCfgSpaceSize);
  const uint32_t n = std::min<uint32_t>(cs.size(), static_cast<uint32_t>(c.configImage.size()));
  for (uint32_t i = 0; i < n; ++i) cs.set(i, 1, c.configImage[i]);
  setupHeader(cs, c);
  clearBits(cs, kPciStatus, kPciStatusErrorBits);
  if (const auto pm = findCapabilityIn(cs, kPciCapIdPm)) {
    clearBits(cs, *pm + kPciPmCtrl,
              kPciPmCtrlStateMask | kPciPmCtrlPmeEnable | kPciPmCtrlPmeStatus);
    pmWritable(cs, *pm);
  }
  if (const auto msix = findCapabilityIn(cs, kPciCapIdMsix)) {
    clearBits(cs, *msix + kPciMsixFlags, kPciMsixFlagsEnable | kPciMsixFlagsMaskall);
    msixWritable(cs, *msix);
  }
  if (const auto exp = findCapabilityIn(cs, kPciCapIdExp)) {
    clearBits(cs, *exp + kPciExpDevctl, kPciExpDevctlBcrFlr);
    clearBits(cs, *exp + kPciExpDevctl2, kPciExpDevctl2AtomicReq);
    pcieWritable(cs, *exp);
  }
  if (const auto msi = findCapabilityIn(cs, kPciCapIdMsi)) {
    clearBits(cs, *msi + kPciMsiFlags, kPciMsiFlagsEnable | kPciMsiFlagsQsize);
    msiWritable(cs, *msi);
  }
  if (const auto vpd = findCapabilityIn(cs, kPciCapIdVpd)) {
    cs.set(*vpd + kPciVpdAddr, 2, 0);  // the host's last VPD transaction
    cs.set(*vpd + kPciVpdData, 4, 0);
  }
  if (const auto pcix = findCapabilityIn(cs, kPciCapIdPcix)) {
    cs.setWritable(*pcix + kPciXCmd, 2, 0xffff);
    cs.setWritable(*pcix + kPciXEccCsr, 4, 0xffff'ffffU);
  }
  if (const auto aer = findExtCapabilityIn(cs, kPciExtCapIdErr)) {
    cs.set(*aer + kPciErrUncorStatus, 4, 0);  // latched errors
    cs.set(*aer + kPciErrCorStatus, 4, 0);
    aerWritable(cs, *aer);
  }
  if (const auto pwr = findExtCapabilityIn(cs, kPciExtCapIdPwr)) {
    cs.set(*pwr + kPciPwrDataSelect, 1, 0);
    cs.setWritable(*pwr + kPciPwrDataSelect, 1, 0xff);
  }
  return cs;
}

ConfigSpace powerOnConfig(const PciDeviceConfig& c) {
  if (!c.configImage.empty()) return imagePowerOnConfig(c);
  ConfigSpace cs(c.pcie ? kPciCfgSpaceExpSize : kPciCfgSpaceSize);
  cs.set(kPciVendorId, 2, c.vendorId);
  cs.set(kPciDeviceId, 2, c.deviceId);
  cs.set(kPciClassRevision, 4, c.classCode << 8);
  cs.set(kPciSubsystemVendorId, 2, c.vendorId);
  cs.set(kPciSubsystemId, 2, c.deviceId);
  setupHeader(cs, c);

  std::vector<std::pair<uint16_t, uint8_t>> caps;
  if (c.pm) {
    setupPm(cs, *c.pm);
    caps.emplace_back(PciDevice::kPmCapOffset, kPciCapIdPm);
  }
  if (c.msix) {
    setupMsix(cs, *c.msix);
    caps.emplace_back(PciDevice::kMsixCapOffset, kPciCapIdMsix);
  }
  if (c.pcie) {
    setupPcie(cs, *c.pcie);
    caps.emplace_back(PciDevice::kPcieCapOffset, kPciCapIdExp);
  }
  if (c.msi) {
    setupMsi(cs, *c.msi);
    caps.emplace_back(PciDevice::kMsiCapOffset, kPciCapIdMsi);
  }
  linkCapabilities(cs, caps);
  if (c.sriovPf) setupSriov(cs);
  cs.set(kPciInterruptPin, 1, c.interruptPin);
  return cs;
}

bool overlaps(uint32_t offset, unsigned size, uint32_t reg, unsigned regSize) {
  return offset < reg + regSize && reg < offset + size;
}

// Whether writing `size` bytes of `value` at `offset` sets `bit` of the
// 16-bit register at `reg`.
bool setsBit(uint32_t offset, unsigned size, uint32_t value, uint32_t reg, uint16_t bit) {
  const auto index = static_cast<unsigned>(std::countr_zero(bit));
  const uint32_t byte = reg + index / 8;
  if (byte < offset || byte >= offset + size) return false;
  return ((value >> ((byte - offset) * 8 + index % 8)) & 1) != 0;
}

bool isConfigAccessSize(unsigned size) { return size == 1 || size == 2 || size == 4; }

}  // namespace

PciDevice::PciDevice(PciDeviceConfig config)
    : config_(validated(std::move(config))),
      name_(fmt::format("0000:{:02x}:{:02x}.{:x}", config_.bus, config_.slot, config_.function)),
      powerOn_(powerOnConfig(config_)),
      pmCap_(findCapabilityIn(powerOn_, kPciCapIdPm)),
      pcieCap_(findCapabilityIn(powerOn_, kPciCapIdExp)),
      msixCap_(findCapabilityIn(powerOn_, kPciCapIdMsix)),
      msiCap_(findCapabilityIn(powerOn_, kPciCapIdMsi)),
      afFlr_(afFlrIn(powerOn_)),
      vpd_(findCapabilityIn(powerOn_, kPciCapIdVpd) ? std::make_unique<PciVpd>(config_.vpd)
                                                    : nullptr),
      cfg_(powerOn_) {
  VFIOMM_ASSERT_MSG(pmCap_.has_value() == config_.pm.has_value() &&
                        pcieCap_.has_value() == config_.pcie.has_value() &&
                        msixCap_.has_value() == config_.msix.has_value() &&
                        msiCap_.has_value() == config_.msi.has_value(),
                    "the config image's capabilities and the config's fields disagree");
  for (unsigned bar = 0; bar < kPciStdNumBars; ++bar)
    if (barIsIo(bar)) ioPorts_[bar] = std::make_unique<HostPage>();
}

// --- configuration space ---------------------------------------------------------

Status PciDevice::checkConfigAccess(uint32_t offset, unsigned size) const {
  if (!isConfigAccessSize(size)) return fail(Errno::kEINVAL);
  if (offset % size != 0 || offset >= configSize() || configSize() - offset < size)
    return fail(Errno::kEFAULT);
  return ok();
}

Result<uint32_t> PciDevice::configRead(uint32_t offset, unsigned size) const {
  if (Status st = checkConfigAccess(offset, size); !st) return fail(st.error());
  SpinGuard guard(cfgLock_);
  return cfg_.read(offset, size);
}

Status PciDevice::configWrite(uint32_t offset, unsigned size, uint32_t value) {
  if (Status st = checkConfigAccess(offset, size); !st) return st;
  bool startFlr = false;
  {
    SpinGuard guard(cfgLock_);
    const PciPowerState before = powerState();
    cfg_.write(offset, size, value);
    if (pmCap_ && overlaps(offset, size, *pmCap_ + kPciPmCtrl, 2)) applyPmcsrWrite(before);
    startFlr =
        hasFlr() && setsBit(offset, size, value, *pcieCap_ + kPciExpDevctl, kPciExpDevctlBcrFlr);
    if (const auto af = findCapability(kPciCapIdAf); af && afFlr_)
      startFlr = startFlr || setsBit(offset, size, value, *af + kPciAfCtrl, kPciAfCtrlFlr);
    syncDecodeState();
  }
  // vfio never gets here with BCR_FLR or AF FLR: it virtualizes the bits
  // and calls tryResetFunction() instead. The reset takes pci_lock itself,
  // so it starts after this access has released it.
  if (startFlr) resetFunctionNow();
  return ok();
}

std::optional<uint16_t> PciDevice::findCapability(uint8_t id) const {
  return findCapabilityIn(powerOn_, id);
}

std::optional<uint16_t> PciDevice::findExtCapability(uint16_t id) const {
  return findExtCapabilityIn(powerOn_, id);
}

PciPowerState PciDevice::pmcsrState() const {
  return static_cast<PciPowerState>(cfg_.read(*pmCap_ + kPciPmCtrl, 2) & kPciPmCtrlStateMask);
}

void PciDevice::setPmcsrState(PciPowerState state) {
  const uint32_t csr = *pmCap_ + kPciPmCtrl;
  cfg_.set(csr, 2,
           (cfg_.read(csr, 2) & ~uint32_t{kPciPmCtrlStateMask}) | static_cast<uint32_t>(state));
}

void PciDevice::enterPowerState(PciPowerState target) {
  if (pmcsrState() == PciPowerState::kD3hot && target == PciPowerState::kD0 &&
      !config_.pm->noSoftReset)
    resetToPowerOn();  // the internal reset of a function without NoSoftRst
  setPmcsrState(target);
}

bool PciDevice::pmStateSupported(PciPowerState state) const {
  const uint32_t pmc = cfg_.read(*pmCap_ + kPciPmPmc, 2);
  if (state == PciPowerState::kD1) return (pmc & kPciPmCapD1) != 0;
  if (state == PciPowerState::kD2) return (pmc & kPciPmCapD2) != 0;
  return true;
}

bool PciDevice::pmTransitionAllowed(PciPowerState from, PciPowerState to) const {
  if (!pmStateSupported(to)) return false;
  return to == PciPowerState::kD0 || from == PciPowerState::kD0 || to >= from;
}

void PciDevice::applyPmcsrWrite(PciPowerState before) {
  const PciPowerState requested = pmcsrState();
  setPmcsrState(before);
  // The PM spec has a write of a state the function cannot enter complete
  // with the data discarded.
  if (pmTransitionAllowed(before, requested)) enterPowerState(requested);
}

Status PciDevice::setPowerState(PciPowerState state) {
  if (!config_.pm) return state == PciPowerState::kD0 ? ok() : fail(Errno::kEIO);
  SpinGuard guard(cfgLock_);
  const PciPowerState current = pmcsrState();
  if (current == state) return ok();
  if (state != PciPowerState::kD0) {
    if (current != PciPowerState::kD0 && current > state) return fail(Errno::kEINVAL);
    if (!pmStateSupported(state)) return fail(Errno::kEIO);
  }
  // pci_power_up(): a D3hot -> D0 transition without NoSoftRst is an
  // internal reset, after which the core puts the BARs back.
  const bool barsLost = current == PciPowerState::kD3hot && state == PciPowerState::kD0 &&
                        (cfg_.read(*pmCap_ + kPciPmCtrl, 2) & kPciPmCtrlNoSoftReset) == 0;
  enterPowerState(state);
  if (barsLost) restoreBars();
  syncDecodeState();
  return ok();
}

void PciDevice::restoreBars() {
  for (unsigned bar = 0; bar < kPciStdNumBars; ++bar) {
    if (barLen(bar) == 0) continue;
    const uint32_t reg = pciBaseAddress(bar);
    cfg_.write(reg, 4, static_cast<uint32_t>(resourceStart_[bar]));
    if (barIs64(bar)) cfg_.write(reg + 4, 4, static_cast<uint32_t>(resourceStart_[bar] >> 32));
  }
}

PciSavedState PciDevice::saveState() const {
  SpinGuard guard(cfgLock_);
  return PciSavedState(cfg_);
}

void PciDevice::restoreState(const PciSavedState& state) {
  restoreStateCount.add();
  SpinGuard guard(cfgLock_);
  const PciPowerState now = config_.pm ? pmcsrState() : PciPowerState::kD0;
  cfg_ = state.cfg_;
  if (config_.pm) setPmcsrState(now);
  syncDecodeState();
}

void PciDevice::resetToPowerOn() {
  cfg_ = powerOn_;
  resetCount_.fetch_add(1, std::memory_order_acq_rel);
}

void PciDevice::syncDecodeState() {
  const uint32_t command = cfg_.read(kPciCommand, 2);
  memorySpace_.store((command & kPciCommandMemory) != 0, std::memory_order_release);
  ioSpace_.store((command & kPciCommandIo) != 0, std::memory_order_release);
  romEnabled_.store(
      config_.romSize.has_value() && (cfg_.read(kPciRomAddress, 4) & kPciRomAddressEnable) != 0,
      std::memory_order_release);
  powerState_.store(config_.pm ? pmcsrState() : PciPowerState::kD0, std::memory_order_release);
}

// --- physical state ------------------------------------------------------------------

bool PciDevice::memoryDecodeEnabled() const {
  const bool memorySpace = config_.noCommandMemory || memorySpace_.load(std::memory_order_acquire);
  return memorySpace && powerState() < PciPowerState::kD3hot && !inReset();
}

bool PciDevice::romDecodeEnabled() const {
  return romEnabled_.load(std::memory_order_acquire) && memoryDecodeEnabled();
}

bool PciDevice::ioDecodeEnabled() const {
  return ioSpace_.load(std::memory_order_acquire) && powerState() < PciPowerState::kD3hot &&
         !inReset();
}

// --- resources -------------------------------------------------------------------------

void PciDevice::assignResource(unsigned resource, uint64_t start) {
  const bool rom = resource == kPciRomResource;
  const uint64_t len = rom ? romLen() : barLen(resource);
  VFIOMM_ASSERT_MSG(len != 0, "assigning an unimplemented resource");
  VFIOMM_ASSERT_MSG(isAligned(start, len), "a BAR holds only addresses aligned to its size");
  VFIOMM_ASSERT_MSG((!rom && barIs64(resource)) || start + len <= (uint64_t{1} << 32),
                    "a 32-bit BAR is below 4 GiB");
  resourceStart_[resource] = start;
  SpinGuard guard(cfgLock_);
  // The register keeps its read-only type bits; a ROM stays disabled.
  const uint32_t reg = rom ? kPciRomAddress : pciBaseAddress(resource);
  cfg_.write(reg, 4, static_cast<uint32_t>(start));
  if (!rom && barIs64(resource)) cfg_.write(reg + 4, 4, static_cast<uint32_t>(start >> 32));
}

uint64_t PciDevice::barStart(unsigned bar) const {
  VFIOMM_ASSERT(bar < kPciStdNumBars);
  return resourceStart_[bar];
}

uint64_t PciDevice::barLen(unsigned bar) const {
  VFIOMM_ASSERT(bar < kPciStdNumBars);
  return config_.bars[bar] ? config_.bars[bar]->size : 0;
}

bool PciDevice::barIsMem(unsigned bar) const {
  return barLen(bar) != 0 && isMem(*config_.bars[bar]);
}

bool PciDevice::barIsIo(unsigned bar) const {
  return barLen(bar) != 0 && !isMem(*config_.bars[bar]);
}

bool PciDevice::barIs64(unsigned bar) const {
  return barLen(bar) != 0 && config_.bars[bar]->kind == BarKind::kMem64;
}

bool PciDevice::barPrefetchable(unsigned bar) const {
  return barLen(bar) != 0 && config_.bars[bar]->prefetchable;
}

std::optional<MsixTable> PciDevice::msixTable() const {
  if (!config_.msix) return std::nullopt;
  return MsixTable{config_.msix->bar, config_.msix->tableOffset,
                   uint64_t{config_.msix->vectors} * kPciMsixEntrySize};
}

// --- I/O-port BARs -------------------------------------------------------------------------

Status PciDevice::checkIoAccess(unsigned bar, uint64_t offset, unsigned size) const {
  if (bar >= kPciStdNumBars || !barIsIo(bar) || !isConfigAccessSize(size) || offset % size != 0 ||
      offset >= barLen(bar) || barLen(bar) - offset < size)
    return fail(Errno::kEINVAL);
  return ok();
}

Result<uint32_t> PciDevice::ioRead(unsigned bar, uint64_t offset, unsigned size) {
  if (Status st = checkIoAccess(bar, offset, size); !st) return fail(st.error());
  ioAccessCount.add();
  if (!ioDecodeEnabled()) {
    ioMasterAbortCount.add();
    return static_cast<uint32_t>(allOnes(size));
  }
  return static_cast<uint32_t>(ioPorts_[bar]->load(offset, size));
}

Status PciDevice::ioWrite(unsigned bar, uint64_t offset, unsigned size, uint32_t value) {
  if (Status st = checkIoAccess(bar, offset, size); !st) return st;
  ioAccessCount.add();
  if (!ioDecodeEnabled()) {
    ioMasterAbortCount.add();
    return ok();
  }
  ioPorts_[bar]->store(offset, size, value);
  return ok();
}

// --- resets --------------------------------------------------------------------------------

void PciDevice::saveAndDisable() {
  SpinGuard guard(cfgLock_);
  VFIOMM_ASSERT_MSG(!saved_.has_value(), "a reset of this function is already in progress");
  // Saved before waking: the reset then leaves the function configured as
  // it was, which is what Linux gets by restoring BARs on the way to D0 and
  // the rest from pci_save_state().
  saved_ = cfg_;
  inReset_.store(true, std::memory_order_release);
  if (config_.pm) enterPowerState(PciPowerState::kD0);
  cfg_.write(kPciCommand, 2, kPciCommandIntxDisable);
  syncDecodeState();
}

void PciDevice::hardwareReset() {
  SpinGuard guard(cfgLock_);
  VFIOMM_ASSERT_MSG(saved_.has_value(), "a reset outside saveAndDisable()/restore()");
  resetToPowerOn();
  syncDecodeState();
}

void PciDevice::restore() {
  SpinGuard guard(cfgLock_);
  VFIOMM_ASSERT_MSG(saved_.has_value(), "restore() without saveAndDisable()");
  cfg_ = *saved_;
  saved_.reset();
  // The reset left the function in D0; the saved power state is not one
  // to go back to.
  if (config_.pm) setPmcsrState(PciPowerState::kD0);
  syncDecodeState();
  inReset_.store(false, std::memory_order_release);
}

bool PciDevice::busResetFunctionAvailable() const {
  if (bus_ == nullptr || !bus_->busResetAvailable()) return false;
  const auto& devs = bus_->devices();
  // pci_dev_reset_slot_function(): a hotplug slot resets a single-function
  // device in it.
  const bool aloneInSlot = std::count_if(devs.begin(), devs.end(), [&](const PciDevice* d) {
                             return d->slot() == slot();
                           }) == 1;
  if (bus_->slotResetAvailable() && aloneInSlot) return true;
  // pci_parent_bus_reset(): the secondary bus reset must reach nobody else.
  return devs.size() == 1;
}

std::vector<PciResetMethod> PciDevice::resetMethods() const {
  std::vector<PciResetMethod> methods;
  if (hasFlr()) methods.push_back(PciResetMethod::kFlr);
  if (hasAfFlr()) methods.push_back(PciResetMethod::kAfFlr);
  if (pmResetAvailable()) methods.push_back(PciResetMethod::kPm);
  if (busResetFunctionAvailable()) methods.push_back(PciResetMethod::kBus);
  return methods;
}

void PciDevice::functionLevelReset() {
  flrCount.add();
  // Decode is off until restore(): a scheduler may run another CPU here.
  schedPoint("pci.flr");
  hardwareReset();
}

void PciDevice::pmReset() {
  pmResetCount.add();
  {
    SpinGuard guard(cfgLock_);
    enterPowerState(PciPowerState::kD3hot);
    syncDecodeState();
  }
  schedPoint("pci.pm_reset");
  SpinGuard guard(cfgLock_);
  enterPowerState(PciPowerState::kD0);  // without NoSoftRst: the reset
  syncDecodeState();
}

Status PciDevice::flr() {
  if (!hasFlr()) return fail(Errno::kENOTTY);
  resetFunctionNow();
  return ok();
}

void PciDevice::resetFunctionNow() {
  saveAndDisable();
  functionLevelReset();
  restore();
}

Result<uint32_t> PciDevice::readVpd(uint32_t pos) {
  if (!vpd_) return fail(Errno::kENODEV);
  return vpd_->readDword(pos);
}

Status PciDevice::writeVpd(uint32_t pos, uint32_t value) {
  if (!vpd_) return fail(Errno::kENODEV);
  return vpd_->writeDword(pos, value);
}

void PciDevice::secondaryBusReset() {
  busResetFunctionCount.add();
  schedPoint("pci.bus_reset");
  hardwareReset();
}

Status PciDevice::tryResetFunction() {
  const std::vector<PciResetMethod> methods = resetMethods();
  if (methods.empty()) return fail(Errno::kENOTTY);
  if (!deviceLock_.tryLock()) return fail(Errno::kEAGAIN);
  saveAndDisable();
  // Each method the device has succeeds, so the first one is the reset.
  switch (methods.front()) {
    case PciResetMethod::kFlr:
    case PciResetMethod::kAfFlr: functionLevelReset(); break;
    case PciResetMethod::kPm: pmReset(); break;
    case PciResetMethod::kBus: secondaryBusReset(); break;
  }
  restore();
  deviceLock_.unlock();
  return ok();
}

}  // namespace vfiomm
