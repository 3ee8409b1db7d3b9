#include "vfio/vfio_pci_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>

#include "base/assert.h"
#include "hw/machine.h"
#include "pci/pci_device.h"
#include "pci/pci_regs.h"
#include "vfio/vfio_pci_core_device.h"

namespace vfiomm {

namespace {

constexpr uint32_t kAllVirt = 0xffff'ffffU;
constexpr uint32_t kAllWrite = 0xffff'ffffU;

// Capability ids and sizes vfio's length tables know (pci_cap_length,
// pci_ext_cap_length of vfio_pci_config.c, ≈v5.8, vfio-uapi.md §0): an id
// with length 0 there, or beyond the table, is hidden from the user.
constexpr uint8_t kCapIdAgp = 0x02;
constexpr uint8_t kCapIdHt = 0x08;
constexpr uint8_t kCapIdSata = 0x12;
constexpr uint8_t kCapIdMax = 0x14;  // PCI_CAP_ID_EA
constexpr uint16_t kExtCapIdVndr = 0x0b;

// The AER bits vfio lets the user write to status, mask and severity: the
// uncorrectable errors from Undefined to TLP Prefix Blocked and the
// correctable ones from Receiver Error to Header Log Overflow
// (init_pci_ext_cap_err_perm).
constexpr uint32_t kAerUncorWritable = 0x03ff'f031;
constexpr uint32_t kAerCorWritable = 0x0000'f1c1;

// Fixed-size standard capabilities; 0xff: the length is read from the
// capability; absent: hidden.
uint32_t fixedCapLength(uint8_t id) {
  switch (id) {
    case kPciCapIdPm: return kPciPmSizeof;
    case kCapIdAgp: return 12;    // PCI_AGP_SIZEOF
    case kPciCapIdVpd: return 8;  // PCI_CAP_VPD_SIZEOF
    case kPciCapIdMsix: return kPciCapMsixSizeof;
    case kPciCapIdAf: return 6;  // PCI_CAP_AF_SIZEOF
    case kPciCapIdMsi:
    case kPciCapIdPcix:
    case kCapIdHt:
    case kPciCapIdVndr:
    case kPciCapIdExp:
    case kCapIdSata: return 0xff;
    default: return 0;
  }
}

uint32_t fixedExtCapLength(uint16_t id) {
  switch (id) {
    case 0x01: return 0x2c;  // AER, up to PCI_ERR_ROOT_COMMAND
    case 0x03: return 12;    // DSN
    case 0x04: return 16;    // power budgeting
    case 0x0e: return 8;     // ARI
    case 0x0f: return 8;     // ATS
    case kPciExtCapIdSriov: return kPciExtCapSriovSizeof;
    case 0x12: return 0x28;  // multicast, endpoint
    case 0x13: return 0x10;  // PRI
    case 0x18: return 8;     // LTR
    case 0x02:               // VC
    case 0x08:               // MFVC
    case 0x09:               // VC9
    case kExtCapIdVndr:
    case 0x0d:               // ACS
    case 0x15:               // resizable BAR
    case 0x16:               // DPA
    case 0x17: return 0xff;  // TPH
    default: return 0;
  }
}

bool isBarRegister(uint32_t pos) {
  return (pos >= kPciBaseAddress0 && pos < kPciBaseAddress5 + 4) ||
         (pos >= kPciRomAddress && pos < kPciRomAddress + 4);
}

uint32_t sizeMask(unsigned size) { return static_cast<uint32_t>(allOnes(size)); }

}  // namespace

VfioPciConfig::VfioPciConfig(VfioPciCoreDevice& vdev) : vdev_(vdev) {}

// ---------------------------------------------------------------------------
// vfio_config_init()

void VfioPciConfig::init() {
  PciDevice& pdev = vdev_.pdev();
  cfgSize_ = pdev.configSize();
  areas_.assign(1, Area{});
  areaOf_.assign(cfgSize_, 0);
  virt_.assign(cfgSize_, 0);
  write_.assign(cfgSize_, 0);
  extendedCaps_ = false;
  {
    std::lock_guard g(vconfigMu_);
    vconfig_.assign(cfgSize_, 0);
    barDirty_ = true;
  }
  addArea(0, kPciStdHeaderSizeof, Kind::kBasic);
  initBasicPerms();
  for (unsigned i = 0; i < kPciStdNumBars; ++i) rbar_[i] = vconfigRead(pciBaseAddress(i), 4);
  rbar_[kPciRomResource] = vconfigRead(kPciRomAddress, 4);
  if (pdev.noCommandMemory()) {
    // A VF's IDs read as 0xffff on the bus; vfio shows the real ones. Its
    // pin must be 0, and its MEM bit is virtual (the PF decodes for it).
    vconfigWrite(kPciVendorId, 2, pdev.config().vendorId);
    vconfigWrite(kPciDeviceId, 2, pdev.config().deviceId);
    vconfigWrite(kPciInterruptPin, 1, 0);
    vconfigWrite(kPciCommand, 2, vconfigRead(kPciCommand, 2) | kPciCommandMemory);
  }
  if (vdev_.nointx()) vconfigWrite(kPciInterruptPin, 1, 0);
  initCaps();
  initExtCaps();
  WriteGuard g(vdev_.memoryLock());
  vdev_.setVirtualCommandLocked(static_cast<uint16_t>(vconfigRead(kPciCommand, 2)));
}

void VfioPciConfig::addArea(uint32_t start, uint32_t len, Kind kind) {
  len = std::min(len, cfgSize_ - start);
  const auto index = static_cast<uint16_t>(areas_.size());
  areas_.push_back(Area{start, len, kind});
  // Overlapping capabilities: the later one wins, as in the kernel, which
  // warns per byte; one line per capability is enough here.
  const auto overlap = std::find_if(areaOf_.begin() + start, areaOf_.begin() + start + len,
                                    [](uint16_t a) { return a != 0; });
  if (overlap != areaOf_.begin() + start + len)
    vdev_.machine().log().print(fmt::format("vfio_cap_init: {} pci config conflict @{:#x}",
                                            vdev_.pdev().name(),
                                            start + (overlap - (areaOf_.begin() + start))));
  std::fill(areaOf_.begin() + start, areaOf_.begin() + start + len, index);
  // vfio_fill_vconfig_bytes(): the area as the device has it now.
  for (uint32_t i = start; i < start + len; ++i)
    vconfigWrite(i, 1, vdev_.pdev().configRead(i, 1).value_or(0));
}

void VfioPciConfig::setPerm(uint32_t offset, unsigned size, uint32_t virt, uint32_t write) {
  for (unsigned i = 0; i < size && offset + i < cfgSize_; ++i) {
    virt_[offset + i] = static_cast<uint8_t>(virt >> (8 * i));
    write_[offset + i] = static_cast<uint8_t>(write >> (8 * i));
  }
}

// The header's row of §8's table.
void VfioPciConfig::initBasicPerms() {
  setPerm(kPciVendorId, 2, kAllVirt, 0);
  setPerm(kPciDeviceId, 2, kAllVirt, 0);
  setPerm(kPciCommand, 2, kPciCommandIntxDisable, kAllWrite);  // UAPI-22
  setPerm(kPciStatus, 2, kPciStatusCapList, 0);
  setPerm(kPciCacheLineSize, 1, 0, kAllWrite);
  setPerm(kPciLatencyTimer, 1, 0, kAllWrite);
  setPerm(kPciBist, 1, 0, kAllWrite);
  for (unsigned i = 0; i < kPciStdNumBars; ++i) setPerm(pciBaseAddress(i), 4, kAllVirt, kAllWrite);
  setPerm(kPciRomAddress, 4, kAllVirt, kAllWrite);
  setPerm(kPciCapabilityList, 1, kAllVirt, 0);
  setPerm(kPciInterruptLine, 1, kAllVirt, kAllWrite);
  setPerm(kPciInterruptPin, 1, kAllVirt, 0);
}

uint32_t VfioPciConfig::capLength(uint8_t id, uint32_t pos) {
  const PciDevice& pdev = vdev_.pdev();
  auto byte = [&](uint32_t at) { return pdev.configRead(at, 1).value_or(0); };
  auto word = [&](uint32_t at) { return pdev.configRead(at, 2).value_or(0); };
  const uint32_t fixed = fixedCapLength(id);
  if (fixed != 0xff) return fixed;
  switch (id) {
    case kPciCapIdMsi: {
      const uint32_t flags = word(pos + kPciMsiFlags);
      return kPciMsi32Sizeof + ((flags & kPciMsiFlags64Bit) ? 4 : 0) +
             ((flags & kPciMsiFlagsMaskbit) ? 10 : 0);
    }
    case kPciCapIdPcix: {
      const bool v2 = ((word(pos + 2) >> 12) & 3) != 0;  // PCI_X_CMD_VERSION
      if (v2 && cfgSize_ > kPciCfgSpaceSize)
        extendedCaps_ = pdev.configRead(kPciExtCapStart, 4).value_or(0) != 0;
      return v2 ? 24 : 8;
    }
    case kCapIdHt: return (byte(pos + 3) & 0xe0) != 0 ? 24 : 28;
    case kPciCapIdVndr: return byte(pos + kPciCapFlags);
    case kPciCapIdExp: {
      if (cfgSize_ > kPciCfgSpaceSize)
        extendedCaps_ = pdev.configRead(kPciExtCapStart, 4).value_or(0) != 0;
      const uint32_t flags = word(pos + kPciExpFlags);
      const bool rcEnd = ((flags & kPciExpFlagsType) >> 4) == kPciExpTypeRcEnd;
      if ((flags & kPciExpFlagsVers) == 1) return rcEnd ? 0xc : kPciCapExpEndpointSizeofV1;
      return rcEnd ? 0x2c : kPciCapExpEndpointSizeofV2;
    }
    case kCapIdSata: return (byte(pos + 4) & 0xf) == 0xf ? 16 : 8;
    default: return 0;
  }
}

uint32_t VfioPciConfig::extCapLength(uint16_t id, uint32_t pos) {
  const PciDevice& pdev = vdev_.pdev();
  auto dword = [&](uint32_t at) { return pdev.configRead(at, 4).value_or(0); };
  auto byte = [&](uint32_t at) { return pdev.configRead(at, 1).value_or(0); };
  const uint32_t fixed = fixedExtCapLength(id);
  if (fixed != 0xff) return fixed;
  switch (id) {
    case kExtCapIdVndr: return dword(pos + 4) >> 20;  // VSEC header length
    case 0x0d: {  // ACS: egress control vector when the capability has one
      if (!(byte(pos + 4) & 0x20)) return 8;
      const uint32_t bits = byte(pos + 5);
      return 8 + (bits != 0 ? (bits + 31) / 32 * 32 : 256) / 8;
    }
    case 0x15: return 4 + ((byte(pos + 8) & 0xe0) >> 5) * 8;  // resizable BAR
    case 0x16: return 16 + (byte(pos + 4) & 0x1f) + 1;        // DPA
    case 0x17: {                                              // TPH
      const uint32_t cap = dword(pos + 4);
      if ((cap & 0x600) != 0x200) return 12;
      return 12 + ((cap & 0x07ff'0000) >> 16) * 2 + 2;
    }
    default: {  // VC, VC9, MFVC
      const uint32_t evcc = dword(pos + 4) & 7;
      const uint32_t cap2 = dword(pos + 8);
      const uint32_t phases = (cap2 & 8) ? 128 : (cap2 & 4) ? 64 : (cap2 & 2) ? 32 : 0;
      uint32_t len = 0x10 + (1 + evcc) * 0x0c;
      if (phases != 0) len = (len + 15) / 16 * 16 + phases * 4 / 8;
      return len;
    }
  }
}

// vfio_cap_init(): the chain as the device links it, each known
// capability mapped with its permissions; unknown ones unlinked from the
// virtual chain.
void VfioPciConfig::initCaps() {
  PciDevice& pdev = vdev_.pdev();
  if (!(pdev.configRead(kPciStatus, 2).value_or(0) & kPciStatusCapList)) return;
  uint32_t pos = pdev.configRead(kPciCapabilityList, 1).value_or(0);
  uint32_t prevNext = kPciCapabilityList;
  unsigned caps = 0;
  for (unsigned loops = (kPciCfgSpaceSize - kPciStdHeaderSizeof) / 4; pos != 0 && loops > 0;
       --loops) {
    if (pos + 2 > kPciCfgSpaceSize) break;
    const auto id = static_cast<uint8_t>(pdev.configRead(pos + kPciCapListId, 1).value_or(0));
    const uint32_t next = pdev.configRead(pos + kPciCapListNext, 1).value_or(0);
    const uint32_t len = id != 0 && id <= kCapIdMax ? capLength(id, pos) : 0;
    if (len == 0) {
      vdev_.machine().log().print(
          fmt::format("vfio_cap_init: {} hiding cap {:#x}", pdev.name(), id));
      vconfigWrite(prevNext, 1, next);
      pos = next;
      continue;
    }
    const Kind kind = id == kPciCapIdPm     ? Kind::kPm
                      : id == kPciCapIdMsi  ? Kind::kMsi
                      : id == kPciCapIdExp  ? Kind::kExp
                      : id == kPciCapIdVpd  ? Kind::kVpd
                      : id == kPciCapIdAf   ? Kind::kAf
                      : id == kPciCapIdVndr ? Kind::kVendor
                                            : Kind::kDirect;
    addArea(pos, std::min(len, kPciCfgSpaceSize - pos), kind);
    initCapPerms(areas_.back(), id);
    prevNext = pos + kPciCapListNext;
    pos = next;
    ++caps;
  }
  if (caps == 0)
    vconfigWrite(kPciStatus, 2, vconfigRead(kPciStatus, 2) & ~uint32_t{kPciStatusCapList});
}

void VfioPciConfig::initCapPerms(const Area& area, uint8_t id) {
  const uint32_t cap = area.start;
  // Id and next always read from vconfig, so a hidden capability can be
  // skipped in the chain (vfio_direct_config_read and every perm table).
  setPerm(cap + kPciCapListId, 2, kAllVirt, 0);
  auto inside = [&](uint32_t off, unsigned size) { return off + size <= area.len; };
  switch (area.kind) {
    case Kind::kPm:
      // 5.19+: PME is the host's. PME_Support reads 0; PME_En and
      // PME_Status read 0 and cannot be written; the state bits go through
      // vfio_pci_set_power_state(), not the write mask (UAPI-26).
      setPerm(cap + kPciPmPmc, 2, kPciPmCapPmeMask, 0);
      setPerm(cap + kPciPmCtrl, 4, kPciPmCtrlPmeEnable | kPciPmCtrlPmeStatus,
              ~uint32_t{kPciPmCtrlPmeEnable | kPciPmCtrlPmeStatus | kPciPmCtrlStateMask});
      vconfigWrite(cap + kPciPmPmc, 2,
                   vconfigRead(cap + kPciPmPmc, 2) & ~uint32_t{kPciPmCapPmeMask});
      vconfigWrite(
          cap + kPciPmCtrl, 2,
          vconfigRead(cap + kPciPmCtrl, 2) & ~uint32_t{kPciPmCtrlPmeEnable | kPciPmCtrlPmeStatus});
      break;
    case Kind::kMsi: {
      // Flags (low byte), address and data are vfio's to program: virtual.
      const uint32_t flags = vconfigRead(cap + kPciMsiFlags, 2);
      setPerm(cap + kPciMsiFlags, 1, kAllVirt, kAllWrite);
      setPerm(cap + kPciMsiAddressLo, 4, kAllVirt, kAllWrite);
      const bool is64 = (flags & kPciMsiFlags64Bit) != 0;
      if (is64) setPerm(cap + kPciMsiAddressHi, 4, kAllVirt, kAllWrite);
      setPerm(cap + (is64 ? kPciMsiData64 : kPciMsiData32), 2, kAllVirt, kAllWrite);
      if (flags & kPciMsiFlagsMaskbit) {
        setPerm(cap + (is64 ? kPciMsiMask64 : kPciMsiMask32), 4, 0, kAllWrite);
        setPerm(cap + (is64 ? kPciMsiPending64 : kPciMsiPending32), 4, 0, kAllWrite);
      }
      break;
    }
    case Kind::kExp:
      // FLR, Max Payload and MRRS virtual (vfio acts on them); Phantom
      // Functions not writable; DEVCTL2 through but for ARI.
      if (inside(kPciExpDevctl, 2))
        setPerm(cap + kPciExpDevctl, 2,
                kPciExpDevctlBcrFlr | kPciExpDevctlPayload | kPciExpDevctlReadrq,
                static_cast<uint16_t>(~kPciExpDevctlPhantom));
      if (inside(kPciExpDevctl2, 2))
        setPerm(cap + kPciExpDevctl2, 2, 0, static_cast<uint16_t>(~kPciExpDevctl2Ari));
      break;
    case Kind::kVpd:
      // The address and data registers are vfio's: it runs the VPD
      // transaction itself when the address is written (vpdWrite).
      setPerm(cap + kPciVpdAddr, 2, 0xffff, 0xffff);
      setPerm(cap + kPciVpdData, 4, kAllVirt, kAllWrite);
      break;
    case Kind::kAf:
      setPerm(cap + kPciAfCtrl, 1, kPciAfCtrlFlr, kPciAfCtrlFlr);  // as DEVCTL's FLR
      break;
    default:
      // PCI-X: command and ECC control through. MSI-X and the rest:
      // read-only pass-through (UAPI-28).
      if (id == kPciCapIdPcix) {
        setPerm(cap + kPciXCmd, 2, 0, 0xffff);
        if (inside(kPciXEccCsr, 4)) setPerm(cap + kPciXEccCsr, 4, 0, kAllWrite);
      }
      break;
  }
}

// init_pci_ext_cap_err_perm / _pwr_perm: the only extended capabilities
// with writable bits besides the vendor-specific one.
void VfioPciConfig::initExtCapPerms(uint16_t id, uint32_t epos) {
  if (id == kPciExtCapIdErr) {
    setPerm(epos + kPciErrUncorStatus, 4, 0, kAerUncorWritable);
    setPerm(epos + kPciErrUncorMask, 4, 0, kAerUncorWritable);
    setPerm(epos + kPciErrUncorSever, 4, 0, kAerUncorWritable);
    setPerm(epos + kPciErrCorStatus, 4, 0, kAerCorWritable);
    setPerm(epos + kPciErrCorMask, 4, 0, kAerCorWritable);
    setPerm(epos + kPciErrCap, 4, 0, kPciErrCapEcrcGene | kPciErrCapEcrcChke);
  } else if (id == kPciExtCapIdPwr) {
    setPerm(epos + kPciPwrDataSelect, 1, 0, 0xff);  // which entry Data shows
  }
}

// vfio_ecap_init(): as initCaps() for the extended list; a hidden first
// capability stays as a placeholder that anchors the list.
void VfioPciConfig::initExtCaps() {
  if (!extendedCaps_) return;
  PciDevice& pdev = vdev_.pdev();
  uint32_t epos = kPciExtCapStart;
  std::optional<uint32_t> prev;
  unsigned ecaps = 0;
  for (unsigned loops = (cfgSize_ - kPciCfgSpaceSize) / 4; loops > 0 && epos >= kPciExtCapStart;
       --loops) {
    if (epos + 4 > cfgSize_) break;
    const uint32_t header = pdev.configRead(epos, 4).value_or(0);
    const auto id = static_cast<uint16_t>(header & 0xffff);
    const uint32_t next = (header >> 20) & 0xffc;
    uint32_t len = extCapLength(id, epos);
    bool hidden = false;
    if (len == 0) {
      vdev_.machine().log().print(
          fmt::format("vfio_ecap_init: {} hiding ecap {:#x}@{:#x}", pdev.name(), id, epos));
      if (prev) {
        vconfigWrite(*prev, 4, (vconfigRead(*prev, 4) & ~(0xffcU << 20)) | (next << 20));
        epos = next;
        continue;
      }
      len = 4;
      hidden = true;
    }
    addArea(epos, len, id == kExtCapIdVndr ? Kind::kVendor : Kind::kDirect);
    setPerm(epos, 4, kAllVirt, 0);  // the header, with the next pointer
    if (!hidden) initExtCapPerms(id, epos);
    if (hidden)
      vconfigWrite(epos, 4, vconfigRead(epos, 4) & (0xffcU << 20));
    else
      ++ecaps;
    prev = epos;
    epos = next;
  }
  if (ecaps == 0) vconfigWrite(kPciExtCapStart, 4, 0);
}

// ---------------------------------------------------------------------------
// vfio_pci_config_rw() and vfio_config_do_rw()

Result<uint64_t> VfioPciConfig::rw(uint8_t* buf, uint64_t count, uint64_t pos, bool write) {
  if (pos >= cfgSize_ || count > cfgSize_ - pos) return fail(Errno::kEFAULT);  // UAPI-28
  uint64_t done = 0;
  while (done < count) {
    const auto at = static_cast<uint32_t>(pos + done);
    const unsigned size = pieceSize(at, count - done);
    uint32_t value = 0;
    if (write) {
      std::memcpy(&value, buf + done, size);
      if (Status st = writePiece(at, size, value); !st) return fail(st.error());
    } else {
      Result<uint32_t> r = readPiece(at, size);
      if (!r) return fail(r.error());
      value = *r;
      std::memcpy(buf + done, &value, size);
    }
    done += size;
  }
  return done;
}

// Naturally aligned, inside one dword and one area.
unsigned VfioPciConfig::pieceSize(uint32_t pos, uint64_t count) const {
  uint32_t sameArea = 1;
  while ((pos + sameArea) % 4 != 0 && areaOf_[pos + sameArea] == areaOf_[pos]) ++sameArea;
  const uint64_t n = std::min<uint64_t>(count, sameArea);
  if (n >= 4 && pos % 4 == 0) return 4;
  if (n >= 2 && pos % 2 == 0) return 2;
  return 1;
}

Result<uint32_t> VfioPciConfig::readPiece(uint32_t pos, unsigned size) {
  const Area& area = areaAt(pos);
  switch (area.kind) {
    case Kind::kUnassigned: return vdev_.pdev().configRead(pos, size);
    case Kind::kBasic: {
      if (isBarRegister(pos)) {
        std::lock_guard g(vconfigMu_);
        if (barDirty_) barFixupLocked();
      }
      Result<uint32_t> v = defaultRead(pos, size);
      // A VF has no MEM bit: show the virtual one.
      if (v && pos == kPciCommand && vdev_.pdev().noCommandMemory())
        *v |= vconfigRead(kPciCommand, 2) & kPciCommandMemory;
      return v;
    }
    case Kind::kMsi: {
      // Multiple Message Capable reads as what SET_IRQS enabled (msi_qmax):
      // the model has no SET_IRQS, so 0.
      const uint32_t off = pos - area.start;
      if (off <= kPciMsiFlags && off + size >= kPciMsiFlags) {
        const uint32_t flags = area.start + kPciMsiFlags;
        vconfigWrite(flags, 2, vconfigRead(flags, 2) & ~uint32_t{kPciMsiFlagsQmask});
      }
      return defaultRead(pos, size);
    }
    default: return defaultRead(pos, size);
  }
}

Status VfioPciConfig::writePiece(uint32_t pos, unsigned size, uint32_t value) {
  const Area& area = areaAt(pos);
  switch (area.kind) {
    case Kind::kUnassigned:
    case Kind::kVendor: return vdev_.pdev().configWrite(pos, size, value);
    case Kind::kDirect:
      return defaultWrite(pos, size, value);  // a read-only area drops it (UAPI-25)
    case Kind::kVpd: return vpdWrite(area, pos, size, value);
    case Kind::kAf: return afWrite(area, pos, size, value);
    case Kind::kBasic: return basicWrite(pos, size, value);
    case Kind::kPm: return pmWrite(area, pos, size, value);
    case Kind::kMsi: return msiWrite(area, pos, size, value);
    case Kind::kExp: return expWrite(area, pos, size, value);
  }
  return ok();
}

Result<uint32_t> VfioPciConfig::defaultRead(uint32_t pos, unsigned size) {
  const uint32_t virt = permRead(virt_, pos, size);
  const uint32_t v = vconfigRead(pos, size);
  if (virt == sizeMask(size)) return v;
  Result<uint32_t> phys = vdev_.pdev().configRead(pos, size);
  if (!phys) return phys;
  return (*phys & ~virt) | (v & virt);
}

Status VfioPciConfig::defaultWrite(uint32_t pos, unsigned size, uint32_t value) {
  const uint32_t write = permRead(write_, pos, size);
  if (write == 0) return ok();  // a read-only area: dropped (UAPI-25)
  const uint32_t virt = permRead(virt_, pos, size);
  if (const uint32_t bits = write & virt; bits != 0)
    vconfigWrite(pos, size, (vconfigRead(pos, size) & ~bits) | (value & bits));
  if (const uint32_t bits = write & ~virt; bits != 0) {
    Result<uint32_t> phys = vdev_.pdev().configRead(pos, size);
    if (!phys) return fail(phys.error());
    return vdev_.pdev().configWrite(pos, size, (*phys & ~bits) | (value & bits));
  }
  return ok();
}

// ---------------------------------------------------------------------------
// The header: COMMAND and the BARs

Status VfioPciConfig::basicWrite(uint32_t pos, unsigned size, uint32_t value) {
  if (pos == kPciCommand) return commandWrite(pos, size, value);
  // INTx disable (a write at PCI_COMMAND + 1) is vconfig only: the model
  // has no INTx for it to mask.
  const Status st = defaultWrite(pos, size, value);
  if (st && isBarRegister(pos)) {
    std::lock_guard g(vconfigMu_);
    barDirty_ = true;
  }
  return st;
}

// vfio_basic_config_write() for a write starting at PCI_COMMAND (§8).
Status VfioPciConfig::commandWrite(uint32_t pos, unsigned size, uint32_t value) {
  Result<uint32_t> phys = vdev_.pdev().configRead(kPciCommand, 2);
  if (!phys) return fail(phys.error());
  const uint32_t virtCmd = vconfigRead(kPciCommand, 2);
  const bool newMem = (value & kPciCommandMemory) != 0;
  const bool newIo = (value & kPciCommandIo) != 0;
  if (newMem) {
    vdev_.downWriteMemoryLock();
  } else {
    vdev_.zapAndDownWriteMemoryLock();  // MEM=0 zaps, even when already 0 (MEM-03)
    vdev_.revokeDmaBufsLocked();
  }
  // MEM/IO being set while vfio thinks they are on but the device has them
  // off, or a BAR that is not what it was at open: the device was reset
  // behind vfio's back (UAPI-29).
  if ((newMem && (virtCmd & kPciCommandMemory) && !(*phys & kPciCommandMemory)) ||
      (newIo && (virtCmd & kPciCommandIo) && !(*phys & kPciCommandIo)) || needBarRestore())
    barRestore();
  const Status st = defaultWrite(pos, size, value);
  if (st) {
    // What __vfio_pci_memory_enabled() tests from now on.
    constexpr uint32_t kDecode = kPciCommandMemory | kPciCommandIo;
    const uint32_t cmd = (vconfigRead(kPciCommand, 2) & ~kDecode) | (value & kDecode);
    vconfigWrite(kPciCommand, 2, cmd);
    vdev_.setVirtualCommandLocked(static_cast<uint16_t>(cmd));
    vdev_.restoreDmaBufsLocked();
  }
  vdev_.upWriteMemoryLock();
  return st;
}

bool VfioPciConfig::needBarRestore() {
  for (unsigned i = 0; i < kPciStdNumBars; ++i) {
    if (rbar_[i] == 0) continue;
    Result<uint32_t> bar = vdev_.pdev().configRead(pciBaseAddress(i), 4);
    if (!bar || *bar != rbar_[i]) return true;
  }
  return false;
}

void VfioPciConfig::barRestore() {
  PciDevice& pdev = vdev_.pdev();
  if (pdev.noCommandMemory()) return;
  // pci_info(), as kernels of the modelled eras print it (older ones used
  // pr_info(), the device after the function, and "bars").
  vdev_.machine().log().print(
      fmt::format("vfio-pci {}: vfio_bar_restore: reset recovery - restoring BARs", pdev.name()));
  for (unsigned i = 0; i < kPciStdNumBars; ++i)
    (void)pdev.configWrite(pciBaseAddress(i), 4, rbar_[i]);
  (void)pdev.configWrite(kPciRomAddress, 4, rbar_[kPciRomResource]);
}

// Sizing works on vconfig alone: the written value masked to the BAR's
// size, with the resource's type bits; hardware BARs are never touched
// (UAPI-23, UAPI-24, MEM-06).
void VfioPciConfig::barFixupLocked() {
  const PciDevice& pdev = vdev_.pdev();
  auto load = [&](uint32_t at) {
    uint32_t v = 0;
    std::memcpy(&v, &vconfig_[at], 4);
    return v;
  };
  auto store = [&](uint32_t at, uint32_t v) { std::memcpy(&vconfig_[at], &v, 4); };
  for (unsigned i = 0; i < kPciStdNumBars; ++i) {
    const uint32_t reg = pciBaseAddress(i);
    if (pdev.barStart(i) == 0) {  // unassigned by the host: unimplemented to the user
      store(reg, 0);
      continue;
    }
    const uint64_t mask = ~(pdev.barLen(i) - 1);
    uint32_t flags = kPciBaseAddressSpaceIo;
    if (pdev.barIsMem(i))
      flags = (pdev.barIs64(i) ? kPciBaseAddressMemType64 : 0) |
              (pdev.barPrefetchable(i) ? kPciBaseAddressMemPrefetch : 0);
    store(reg, (load(reg) & static_cast<uint32_t>(mask)) | flags);
    if (pdev.barIs64(i)) {
      ++i;
      store(reg + 4, load(reg + 4) & static_cast<uint32_t>(mask >> 32));
    }
  }
  // A ROM the host did not assign reads 0 (the model has no shadow ROM).
  if (pdev.romStart() != 0)
    store(kPciRomAddress, load(kPciRomAddress) &
                              (static_cast<uint32_t>(~(pdev.romLen() - 1)) | kPciRomAddressEnable));
  else
    store(kPciRomAddress, 0);
  barDirty_ = false;
}

// ---------------------------------------------------------------------------
// Capabilities with side effects

// vfio_pm_config_write(): the data bits through, then a write starting at
// PMCSR asks for its state (vfio_lock_and_set_power_state; errors ignored:
// the write returns its count and PMCSR shows the state reached, UAPI-26).
Status VfioPciConfig::pmWrite(const Area& area, uint32_t pos, unsigned size, uint32_t value) {
  if (Status st = defaultWrite(pos, size, value); !st) return st;
  if (pos - area.start != kPciPmCtrl) return ok();
  const auto state = static_cast<PciPowerState>(value & kPciPmCtrlStateMask);
  // The seeded bug noZapOnD3hot (DesignOptions) takes the lock only.
  if (state >= PciPowerState::kD3hot && !vdev_.designOptions().noZapOnD3hot) {
    vdev_.zapAndDownWriteMemoryLock();
    vdev_.revokeDmaBufsLocked();
  } else {
    vdev_.downWriteMemoryLock();
  }
  (void)vdev_.setPowerStateLocked(state);
  vdev_.restoreDmaBufsLocked();
  vdev_.upWriteMemoryLock();
  return ok();
}

// vfio_msi_config_write(): the flags vfio allows written to the device
// too — never enable (that is SET_IRQS's), no more vectors than enabled.
Status VfioPciConfig::msiWrite(const Area& area, uint32_t pos, unsigned size, uint32_t value) {
  if (Status st = defaultWrite(pos, size, value); !st) return st;
  const uint32_t off = pos - area.start;
  if (off > kPciMsiFlags || off + size < kPciMsiFlags) return ok();
  const uint32_t at = area.start + kPciMsiFlags;
  const uint32_t flags =
      vconfigRead(at, 2) & ~uint32_t{kPciMsiFlagsEnable} & ~uint32_t{kPciMsiFlagsQsize};
  vconfigWrite(at, 2, flags);
  return vdev_.pdev().configWrite(at, 2, flags);
}

// vfio_exp_config_write(): FLR and MRRS act, MPS stays virtual.
Status VfioPciConfig::expWrite(const Area& area, uint32_t pos, unsigned size, uint32_t value) {
  PciDevice& pdev = vdev_.pdev();
  const uint32_t devctl = area.start + kPciExpDevctl;
  const uint32_t readrq = vconfigRead(devctl, 2) & kPciExpDevctlReadrq;
  if (Status st = defaultWrite(pos, size, value); !st) return st;
  uint32_t ctrl = vconfigRead(devctl, 2);
  if (ctrl & kPciExpDevctlBcrFlr) {
    // Always reads 0; resets the function only when DEVCAP has FLR (RESET-03).
    ctrl &= ~uint32_t{kPciExpDevctlBcrFlr};
    vconfigWrite(devctl, 2, ctrl);
    Result<uint32_t> cap = pdev.configRead(area.start + kPciExpDevcap, 4);
    if (cap && (*cap & kPciExpDevcapFlr)) virtualFlr();
  }
  if (readrq != (ctrl & kPciExpDevctlReadrq)) {
    // pcie_set_readrq() with the device's MPS as the floor.
    const uint32_t hw = pdev.configRead(devctl, 2).value_or(0);
    const uint32_t mps = 128U << ((hw & kPciExpDevctlPayload) >> 5);
    const uint32_t rq = std::max(128U << ((ctrl & kPciExpDevctlReadrq) >> 12), mps);
    if (rq <= 4096) {
      const auto encoded = static_cast<uint32_t>(std::countr_zero(rq) - 7) << 12;
      (void)pdev.configWrite(devctl, 2, (hw & ~uint32_t{kPciExpDevctlReadrq}) | encoded);
    }
  }
  return ok();
}

void VfioPciConfig::virtualFlr() {
  vdev_.zapAndDownWriteMemoryLock();
  vdev_.revokeDmaBufsLocked();
  // Whichever method the core picks; the result is ignored, as in the kernel.
  (void)vdev_.pdev().tryResetFunction();
  vdev_.restoreDmaBufsLocked();
  vdev_.upWriteMemoryLock();
}

// vfio_vpd_config_write(): a write that reaches the address register's
// high byte (the F flag) runs the transaction through the PCI core — F set
// writes Data to the EEPROM, F clear reads the EEPROM into Data — and
// flips F, as the device would when done. A failed transaction leaves
// both registers as written; the write still returns its count.
Status VfioPciConfig::vpdWrite(const Area& area, uint32_t pos, unsigned size, uint32_t value) {
  if (Status st = defaultWrite(pos, size, value); !st) return st;
  const uint32_t flagByte = area.start + kPciVpdAddr + 1;
  if (pos > flagByte || pos + size <= flagByte) return ok();
  const uint32_t addrReg = area.start + kPciVpdAddr;
  const uint32_t dataReg = area.start + kPciVpdData;
  const uint32_t addr = vconfigRead(addrReg, 2);
  if (addr & kPciVpdAddrF) {
    if (!vdev_.pdev().writeVpd(addr & kPciVpdAddrMask, vconfigRead(dataReg, 4))) return ok();
  } else {
    Result<uint32_t> data = vdev_.pdev().readVpd(addr);
    if (!data) return ok();
    vconfigWrite(dataReg, 4, *data);
  }
  vconfigWrite(addrReg, 2, addr ^ kPciVpdAddrF);
  return ok();
}

// vfio_af_config_write(): AF FLR as DEVCTL's, when the capability offers
// both Transactions Pending and FLR.
Status VfioPciConfig::afWrite(const Area& area, uint32_t pos, unsigned size, uint32_t value) {
  if (Status st = defaultWrite(pos, size, value); !st) return st;
  const uint32_t ctrl = area.start + kPciAfCtrl;
  if (!(vconfigRead(ctrl, 1) & kPciAfCtrlFlr)) return ok();
  vconfigWrite(ctrl, 1, vconfigRead(ctrl, 1) & ~uint32_t{kPciAfCtrlFlr});
  Result<uint32_t> cap = vdev_.pdev().configRead(area.start + kPciAfCap, 1);
  constexpr uint32_t kBoth = kPciAfCapTp | kPciAfCapFlr;
  if (cap && (*cap & kBoth) == kBoth) virtualFlr();
  return ok();
}

// ---------------------------------------------------------------------------
// vconfig and the permission maps

uint32_t VfioPciConfig::vconfigRead(uint32_t pos, unsigned size) {
  std::lock_guard g(vconfigMu_);
  uint32_t v = 0;
  std::memcpy(&v, &vconfig_[pos], size);
  return v;
}

void VfioPciConfig::vconfigWrite(uint32_t pos, unsigned size, uint32_t value) {
  std::lock_guard g(vconfigMu_);
  std::memcpy(&vconfig_[pos], &value, size);
}

uint32_t VfioPciConfig::permRead(const std::vector<uint8_t>& perm, uint32_t pos,
                                 unsigned size) const {
  uint32_t v = 0;
  std::memcpy(&v, &perm[pos], size);
  return v;
}

}  // namespace vfiomm
