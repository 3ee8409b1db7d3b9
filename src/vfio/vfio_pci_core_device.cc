#include "vfio/vfio_pci_core_device.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "base/counter.h"
#include "fs/eventfd.h"
#include "hw/machine.h"
#include "mm/vma.h"
#include "pci/pci_regs.h"
#include "pci/pci_rom.h"
#include "vfio/vfio_pci_dmabuf.h"

namespace vfiomm {

namespace {

VFIOMM_COUNTER(memoryLockWrites, "vfio.memory_lock.write", "memory_lock taken for write");
VFIOMM_COUNTER(barRwAccesses, "vfio.rw.device_access", "device accesses of pread/pwrite");

bool isBar(uint32_t index) { return index <= vfio::kBar5; }

bool needsPmRestore(const PciDevice& pdev) {
  const auto pm = pdev.pmCapOffset();
  return pm && (pdev.configRead(*pm + kPciPmCtrl, 2).value_or(0) & kPciPmCtrlNoSoftReset) == 0;
}

// vfio_pci_nointx(): functions whose PCI_STATUS never shows an INTx
// pending, so INTx cannot be shared or masked: all i40e (XL710, X710,
// XXV710) and the X550.
bool brokenIntxMasking(const PciDevice& pdev) {
  constexpr uint16_t kIntel = 0x8086;
  const uint16_t id = pdev.config().deviceId;
  if (pdev.config().vendorId != kIntel) return false;
  return id == 0x1572 || id == 0x1574 || (id >= 0x1580 && id <= 0x1581) ||
         (id >= 0x1583 && id <= 0x158b) || (id >= 0x37d0 && id <= 0x37d2) || id == 0x1563;
}

// The largest naturally aligned access at `off` that fits in `left` bytes.
unsigned accessSize(uint64_t off, uint64_t left, unsigned max) {
  unsigned size = max;
  while (size > 1 && ((off & (size - 1)) != 0 || size > left)) size /= 2;
  return size;
}

}  // namespace

VfioPciCoreDevice::VfioPciCoreDevice(PciDevice& pdev, Machine& machine,
                                     std::shared_ptr<Inode> inode, VfioProfile profile,
                                     DesignKind design, DesignOptions options)
    : pdev_(pdev),
      machine_(machine),
      inode_(std::move(inode)),
      profile_(profile),
      needsPmRestore_(needsPmRestore(pdev)),
      options_(options),
      design_(makeDesign(design, *this, options_)) {}

VfioPciCoreDevice::~VfioPciCoreDevice() = default;

// ---------------------------------------------------------------------------
// enable / disable

// vfio_pci_core_register_device(): D0 first (the PCI core left the power
// state unknown), runtime PM allowed, and the probe's usage count given
// back, so an idle device runtime-suspends to D3hot until it is opened.
void VfioPciCoreDevice::bind() {
  {
    WriteGuard g(memoryLock_);
    (void)setPowerStateLocked(PciPowerState::kD0);
  }
  pmRuntimePut();
}

Status VfioPciCoreDevice::enable() {
  // pm_runtime_resume_and_get(): the open holds a usage count.
  opened_.store(true, std::memory_order_release);
  pmRuntimeGet();
  const Status st = enableResumed();
  if (!st) {
    opened_.store(false, std::memory_order_release);
    pmRuntimePut();
  }
  return st;
}

Status VfioPciCoreDevice::enableResumed() {
  {
    WriteGuard g(memoryLock_);
    (void)setPowerStateLocked(PciPowerState::kD0);  // vfio_pci_core_enable() starts in D0
  }
  // pci_clear_master(), then pci_enable_device(): the decode bits of the
  // kinds of BAR the device has, added to whatever firmware left there
  // (pci_enable_resources()).
  auto cmd = static_cast<uint16_t>(pdev_.configRead(kPciCommand, 2).value_or(0));
  cmd &= static_cast<uint16_t>(~kPciCommandMaster);
  for (unsigned i = 0; i < kPciStdNumBars; ++i)
    if (pdev_.barLen(i) != 0) cmd |= pdev_.barIsIo(i) ? kPciCommandIo : kPciCommandMemory;
  if (auto st = pdev_.configWrite(kPciCommand, 2, cmd); !st) return st;
  // pci_try_reset_function(): a real reset, whose result is reset_works; a
  // contended device lock fails the open (vfio-uapi.md §5).
  const Status reset = pdev_.tryResetFunction();
  if (!reset && reset.error() == Errno::kEAGAIN) {
    (void)pdev_.configWrite(kPciCommand, 2, 0);
    return reset;
  }
  resetWorks_.store(reset.has_value(), std::memory_order_release);
  initIntxMasking();
  config_.init();  // the virtual MEM bit starts from the physical register
  {
    WriteGuard g(memoryLock_);
    exitLowPowerLocked();
  }
  probeMmaps();
  barRequested_.fill(false);
  return ok();
}

// A function on the nointx list has its INTx disabled for good and hidden
// (pin 0); any other that can mask INTx (pci_intx_mask_supported: the
// INTx-disable bit sticks, as it does on every function of the model)
// starts with the bit clear, so vconfig shows 0.
void VfioPciCoreDevice::initIntxMasking() {
  const uint16_t cmd = static_cast<uint16_t>(pdev_.configRead(kPciCommand, 2).value_or(0));
  nointx_ = brokenIntxMasking(pdev_);
  if (nointx_) {
    machine_.log().print(fmt::format("vfio-pci {}: Masking broken INTx support", pdev_.name()));
    (void)pdev_.configWrite(kPciCommand, 2, cmd | kPciCommandIntxDisable);
  } else if (cmd & kPciCommandIntxDisable) {
    (void)pdev_.configWrite(kPciCommand, 2, cmd & ~uint32_t{kPciCommandIntxDisable});
  }
}

void VfioPciCoreDevice::disable() {
  // vfio_pci_core_disable(): decode off, BAR reservations released. Nothing
  // can be mapped any more: the last mapping held the file open. A
  // NoSoftRst- function the user left in D3hot gets its state back first.
  {
    // vfio_pci_runtime_pm_exit() and pm_runtime_resume(): low power ends
    // without a signal, and a suspended function is powered up.
    WriteGuard g(memoryLock_);
    exitLowPowerLocked();
    if (runtimeSuspended()) runtimeResumeLocked();
    (void)setPowerStateLocked(PciPowerState::kD0);
  }
  (void)pdev_.configWrite(kPciCommand, 2, 0);
  barRequested_.fill(false);
  // vfio_pci_dma_buf_cleanup(), compiled in with CONFIG_VFIO_PCI_DMABUF.
  if (profile_.dmabufFeature) VfioPciDmaBuf::cleanup(*this);
  // The open's usage count goes: idle again, the device suspends.
  opened_.store(false, std::memory_order_release);
  pmRuntimePut();
}

// vfio_pci_probe_mmaps(): vfio-bar-mapping.md §2.
void VfioPciCoreDevice::probeMmaps() {
  for (unsigned i = 0; i < kPciStdNumBars; ++i) {
    const uint64_t len = pdev_.barLen(i);
    bool ok = pdev_.barIsMem(i) && len != 0;
    // A sub-page BAR is mappable only if it starts a page (the rest of the
    // page is reserved as "vfio sub-page reserved").
    if (ok && len < kPageSize) ok = isPageAligned(pdev_.barStart(i));
    barMmapSupported_[i] = ok;
  }
}

void VfioPciCoreDevice::addDeviceRegion(DeviceRegion region) {
  deviceRegions_.push_back(std::move(region));
}

void VfioPciCoreDevice::claimBarElsewhere(unsigned bar) { barClaimedElsewhere_.at(bar) = true; }

Status VfioPciCoreDevice::requestBar(unsigned bar) {
  // pci_request_selected_regions() + pci_iomap() at first use.
  std::lock_guard g(barmapLock_);
  if (barRequested_[bar]) return ok();
  if (barClaimedElsewhere_[bar]) return fail(Errno::kEBUSY);
  barRequested_[bar] = true;
  return ok();
}

// ---------------------------------------------------------------------------
// memory_lock and the memory-enable state

bool VfioPciCoreDevice::memoryEnabledLocked() {
  if (pdev_.powerState() >= PciPowerState::kD3hot) return false;
  return pdev_.noCommandMemory() || (vcmd_ & kPciCommandMemory) != 0;
}

// The design takes the lock (G1 zaps first, G2+ lock first): a strategy call
// the analysis cannot follow, so lockdep checks the result at run time.
void VfioPciCoreDevice::zapAndDownWriteMemoryLock() NO_THREAD_SAFETY_ANALYSIS {
  design_->zapAndDownWriteMemoryLock();
  memoryLock_.assertHeldWrite();
}

bool VfioPciCoreDevice::tryZapAndDownWriteMemoryLock() NO_THREAD_SAFETY_ANALYSIS {
  return design_->tryZapAndDownWriteMemoryLock();
}

void VfioPciCoreDevice::downWriteMemoryLock() {
  memoryLock_.downWrite();
  memoryLockWrites_.fetch_add(1, std::memory_order_relaxed);
  memoryLockWrites.add();
}

bool VfioPciCoreDevice::downWriteTrylockMemoryLock() {
  if (!memoryLock_.downWriteTrylock()) return false;
  memoryLockWrites_.fetch_add(1, std::memory_order_relaxed);
  memoryLockWrites.add();
  return true;
}

void VfioPciCoreDevice::upWriteMemoryLock() {
  if (upWriteMemoryLockDeferRefill()) design_->memoryEnabled();
}

bool VfioPciCoreDevice::upWriteMemoryLockDeferRefill() {
  const bool refill = refillPending_ && faultAllowedLocked();
  if (refill) {
    refillPending_ = false;
    design_->memoryEnabledLocked();
  }
  memoryLock_.upWrite();
  return refill;
}

void VfioPciCoreDevice::revokeDmaBufsLocked() { VfioPciDmaBuf::move(*this, true); }

void VfioPciCoreDevice::restoreDmaBufsLocked() {
  if (memoryEnabledLocked()) VfioPciDmaBuf::move(*this, false);
}

uint16_t VfioPciCoreDevice::virtualCommand() {
  ReadGuard g(memoryLock_);
  return vcmd_;
}

bool VfioPciCoreDevice::pmRuntimeEngaged() {
  ReadGuard g(memoryLock_);
  return pmRuntimeEngaged_;
}

Pfn VfioPciCoreDevice::vmaToPfn(const Vma& vma) const {
  const uint32_t index = static_cast<uint32_t>(vma.pgoff().value() >> vfio::kPgoffIndexShift);
  return Pfn::fromPhys(PhysAddr(pdev_.barStart(index))) + (vma.pgoff().value() & vfio::kPgoffMask);
}

// ---------------------------------------------------------------------------
// VFIO_DEVICE_GET_REGION_INFO (§1)

Result<RegionInfo> VfioPciCoreDevice::getRegionInfo(uint32_t index) {
  RegionInfo info;
  info.index = index;
  info.offset = vfio::indexToOffset(index);
  if (isBar(index)) {
    info.size = pdev_.barLen(index);
    if (info.size == 0) return info;
    info.flags = vfio::kRegionRead | vfio::kRegionWrite;
    if (barMmapSupported_[index]) info.flags |= vfio::kRegionMmap;
    return info;
  }
  switch (index) {
    case vfio::kRom: {
      info.size = pdev_.romLen();
      if (info.size == 0) return info;
      // pci_map_rom() under vfio_pci_memory_lock_and_enable(): physical MEM
      // on for the probe, restored after; the virtual bit is untouched
      // (MEM-05). No image, no ROM: size 0, flags 0 (UAPI-10).
      downWriteMemoryLock();
      const uint32_t old = pdev_.configRead(kPciCommand, 2).value_or(0);
      if (!(old & kPciCommandMemory))
        (void)pdev_.configWrite(kPciCommand, 2, old | kPciCommandMemory);
      const uint64_t image = mapRom();
      if (image != 0) unmapRom();
      (void)pdev_.configWrite(kPciCommand, 2, old);
      memoryLock_.upWrite();
      if (image == 0) {
        info.size = 0;
        return info;
      }
      info.flags = vfio::kRegionRead;
      return info;
    }
    case vfio::kConfig:
      info.size = pdev_.configSize();
      info.flags = vfio::kRegionRead | vfio::kRegionWrite;
      return info;
    case vfio::kVga: return fail(Errno::kEINVAL);  // not a VGA device
    default: break;
  }
  const uint32_t dev = index - vfio::kNumRegions;
  if (dev >= deviceRegions_.size()) return fail(Errno::kEINVAL);
  info.size = deviceRegions_[dev].size;
  info.flags = deviceRegions_[dev].flags;
  return info;
}

uint64_t VfioPciCoreDevice::mapRom() {
  const uint32_t romBar = pdev_.configRead(kPciRomAddress, 4).value_or(0);
  (void)pdev_.configWrite(kPciRomAddress, 4,
                          (romBar & ~kPciRomAddressMask) | static_cast<uint32_t>(pdev_.romStart()) |
                              kPciRomAddressEnable);
  const PhysAddr base(pdev_.romStart());
  const auto read = [&](uint64_t off, unsigned size) {
    const PhysAddr pa = base + off;
    return static_cast<uint32_t>(
        machine_.physMemMap().read(pa, size, AccessInfo{-1, pa, false, 0}));
  };
  const PciRomSize rom = pciGetRomSize(read, pdev_.romLen());
  // pci_info(), as in vfio_bar_restore's line.
  if (!rom.info.empty())
    machine_.log().print(fmt::format("vfio-pci {}: {}", pdev_.name(), rom.info));
  if (rom.bytes == 0) unmapRom();
  return rom.bytes;
}

// pci_disable_rom(): the enable bit cleared, the address kept.
void VfioPciCoreDevice::unmapRom() {
  const uint32_t romBar = pdev_.configRead(kPciRomAddress, 4).value_or(0);
  (void)pdev_.configWrite(kPciRomAddress, 4, romBar & ~kPciRomAddressEnable);
}

// ---------------------------------------------------------------------------
// mmap (§3)

Status VfioPciCoreDevice::mmap(Vma& vma) {
  const uint64_t index = vma.pgoff().value() >> vfio::kPgoffIndexShift;
  if (index >= vfio::kNumRegions + deviceRegions_.size()) return fail(Errno::kEINVAL);
  if (vma.end() < vma.start()) return fail(Errno::kEINVAL);
  if (!(vma.flags() & vm::kShared)) return fail(Errno::kEINVAL);
  if (index >= vfio::kNumRegions) {
    const DeviceRegion& r = deviceRegions_[index - vfio::kNumRegions];
    if (r.mmap && (r.flags & vfio::kRegionMmap)) return r.mmap(vma);
    return fail(Errno::kEINVAL);
  }
  if (index >= vfio::kRom) return fail(Errno::kEINVAL);
  const auto bar = static_cast<unsigned>(index);
  if (!barMmapSupported_[bar]) return fail(Errno::kEINVAL);
  const uint64_t physLen = pageAlignUp(pdev_.barLen(bar));
  const uint64_t reqStart = (vma.pgoff().value() & vfio::kPgoffMask) << kPageShift;
  const uint64_t reqLen = vma.length();
  if (reqStart > physLen || reqLen > physLen - reqStart) return fail(Errno::kEINVAL);
  if (auto st = requestBar(bar); !st) return st;
  // The second proposal (not merged): the BAR is mapped through a dma-buf.
  if (profile_.dmabufFeature && options_.proposalBarMmapDmabuf)
    return VfioPciDmaBuf::mmapBar(*this, bar, reqStart, vma.fileRef(), vma);

  vma.setPrivateData(this);
  vma.setPageProt(pgprotNoncached(vma.pageProt()));  // + pgprot_decrypted: a no-op here
  VmFlags flags = vm::kIo | vm::kPfnmap | vm::kDontExpand | vm::kDontDump;
  if (profile_.vfioSetsAllowAnyUncached) flags |= vm::kAllowAnyUncached;
  vma.flagsSet(flags);
  design_->setupVma(vma);
  return ok();
}

// ---------------------------------------------------------------------------
// pread / pwrite (§10)

Result<uint64_t> VfioPciCoreDevice::rw(uint8_t* buf, uint64_t count, uint64_t pos, bool write) {
  if (count == 0) return uint64_t{0};
  // vfio_pci_rw(): an unknown region is refused before the device wakes.
  if (vfio::offsetToIndex(pos) >= vfio::kNumRegions + deviceRegions_.size())
    return fail(Errno::kEINVAL);
  pmRuntimeGet();  // pm_runtime_resume_and_get() ... pm_runtime_put()
  auto done = rwActive(buf, count, pos, write);
  pmRuntimePut();
  return done;
}

Result<uint64_t> VfioPciCoreDevice::rwActive(uint8_t* buf, uint64_t count, uint64_t pos,
                                             bool write) {
  const uint32_t index = vfio::offsetToIndex(pos);
  const uint64_t off = pos & vfio::kOffsetMask;
  if (index == vfio::kConfig) return config_.rw(buf, count, off, write);
  if (index == vfio::kRom) {
    if (write) return fail(Errno::kEINVAL);
    return barRw(index, buf, count, off, false);
  }
  if (isBar(index)) return barRw(index, buf, count, off, write);
  return fail(Errno::kEINVAL);  // VGA, or a device region without an rw op
}

unsigned VfioPciCoreDevice::maxAccessSize(uint32_t index) const {
  const bool qword = index == vfio::kRom ? profile_.romQwordAccess : profile_.fdQwordAccess;
  return qword ? 8 : 4;
}

Result<uint64_t> VfioPciCoreDevice::barRw(uint32_t index, uint8_t* buf, uint64_t count,
                                          uint64_t off, bool write) {
  const bool rom = index == vfio::kRom;
  const uint64_t len = rom ? pdev_.romLen() : pdev_.barLen(index);
  if (len == 0) return fail(Errno::kEINVAL);
  if (off >= len) return fail(Errno::kEINVAL);
  count = std::min(count, len - off);
  // [xStart, xEnd): what vfio never reads from the device. For the ROM, the
  // BAR past its image (the ROM decodes only between pci_map_rom() and
  // pci_unmap_rom(), RW-05); for the MSI-X table's BAR, the table, which
  // is vfio's to program (RW-02).
  uint64_t xStart = 0;
  uint64_t xEnd = 0;
  if (rom) {
    xStart = mapRom();
    if (xStart == 0) return fail(Errno::kENOMEM);
    xEnd = len;
  } else if (auto st = requestBar(index); !st) {
    return fail(st.error());  // vfio_pci_core_setup_barmap(): I/O-port BARs too
  }
  if (const auto msix = pdev_.msixTable(); msix && msix->bar == index) {
    xStart = msix->offset;
    xEnd = msix->offset + msix->size;
  }
  auto done = doIoRw(index, buf, count, off, write, xStart, xEnd);
  if (rom) unmapRom();
  return done;
}

// vfio_pci_core_do_io_rw(): the widest naturally aligned accesses that do
// not cross into the excluded range; reads of it see 0xFF, writes to it
// are dropped but counted as done.
Result<uint64_t> VfioPciCoreDevice::doIoRw(uint32_t index, uint8_t* buf, uint64_t count,
                                           uint64_t off, bool write, uint64_t xStart,
                                           uint64_t xEnd) {
  uint64_t done = 0;
  while (done < count) {
    const uint64_t pos = off + done;
    const uint64_t left = count - done;
    if (pos >= xStart && pos < xEnd) {
      const uint64_t filled = std::min(left, xEnd - pos);
      if (!write) std::memset(buf + done, 0xFF, filled);
      done += filled;
      continue;
    }
    const uint64_t fillable = pos < xStart ? std::min(left, xStart - pos) : left;
    const unsigned size = accessSize(pos, fillable, maxAccessSize(index));
    uint64_t value = 0;
    if (write) std::memcpy(&value, buf + done, size);  // copy_from_user, no lock held
    if (auto st = barAccess(index, pos, size, &value, write); !st)
      return fail(st.error());                          // no partial count (RW-03)
    if (!write) std::memcpy(buf + done, &value, size);  // copy_to_user, no lock held
    done += size;
  }
  return done;
}

// I/O-port BARs are not checked against memory enable (MEM-04). Ports
// have no 8-byte access: vfio's ioread64()/iowrite64() are the lo_hi
// helpers (linux/io-64-nonatomic-lo-hi.h), two 4-byte accesses, low first.
Status VfioPciCoreDevice::ioPortAccess(uint32_t index, uint64_t off, unsigned size, uint64_t* value,
                                       bool write) {
  if (size == 8) {
    uint64_t lo = *value & 0xFFFF'FFFFU;
    uint64_t hi = *value >> 32;
    if (auto st = ioPortAccess(index, off, 4, &lo, write); !st) return st;
    if (auto st = ioPortAccess(index, off + 4, 4, &hi, write); !st) return st;
    *value = lo | (hi << 32);
    return ok();
  }
  if (write) return pdev_.ioWrite(index, off, size, static_cast<uint32_t>(*value));
  auto r = pdev_.ioRead(index, off, size);
  if (!r) return fail(r.error());
  *value = *r;
  return ok();
}

Status VfioPciCoreDevice::barAccess(uint32_t index, uint64_t off, unsigned size, uint64_t* value,
                                    bool write) {
  barRwAccesses.add();
  if (accessTrace_) accessTrace_(index, off, size, write);
  if (index != vfio::kRom && pdev_.barIsIo(index))
    return ioPortAccess(index, off, size, value, write);
  const PhysAddr pa(index == vfio::kRom ? pdev_.romStart() + off : pdev_.barStart(index) + off);
  ReadGuard g(memoryLock_);  // once per device access (RW-04)
  if (!memoryEnabledLocked()) return fail(Errno::kEIO);
  PhysRegion* region = machine_.physMemMap().lookup(Pfn::fromPhys(pa));
  const AccessInfo info{-1, pa, write, 0};
  if (region == nullptr) {
    if (!write) *value = allOnes(size);
  } else if (write) {
    region->write(pa - region->base(), size, *value, info);
  } else {
    *value = region->read(pa - region->base(), size, info);
  }
  return ok();
}

// ---------------------------------------------------------------------------
// Resets and power (§7.3)

Status VfioPciCoreDevice::reset() {
  if (!resetWorks()) return fail(Errno::kEINVAL);
  zapAndDownWriteMemoryLock();
  // D0 through vfio_pci_set_power_state() (a NoSoftRst- function gets its
  // configuration back first), then pci_try_reset_function().
  (void)setPowerStateLocked(PciPowerState::kD0);
  revokeDmaBufsLocked();
  const Status st = pdev_.tryResetFunction();
  restoreDmaBufsLocked();
  upWriteMemoryLock();
  return st;
}

Status VfioPciCoreDevice::lowPowerEntry(std::shared_ptr<Eventfd> wakeup) {
  zapAndDownWriteMemoryLock();  // the zap happens even on -EINVAL (RESET-08)
  revokeDmaBufsLocked();
  if (pmRuntimeEngaged_) {
    memoryLock_.upWrite();
    return fail(Errno::kEINVAL);
  }
  pmRuntimeEngaged_ = true;
  usageDropped_.store(true, std::memory_order_release);  // pm_runtime_put_noidle()
  pmWakeEventfd_ = std::move(wakeup);
  upWriteMemoryLock();
  return ok();
}

Status VfioPciCoreDevice::lowPowerExit() {
  downWriteMemoryLock();
  exitLowPowerLocked();
  restoreDmaBufsLocked();
  upWriteMemoryLock();
  return ok();
}

void VfioPciCoreDevice::pmRuntimeGet() {
  if (pmRuntimeGetDeferRefill()) design().memoryEnabled();
}

bool VfioPciCoreDevice::pmRuntimeGetDeferRefill() {
  if (!runtimeSuspended()) return false;  // the usage count alone, no lock
  downWriteMemoryLock();
  if (runtimeSuspended()) runtimeResumeLocked();
  return upWriteMemoryLockDeferRefill();
}

// With the open's count dropped by LOW_POWER_ENTRY, the call's own put is
// the last one: rpm_idle() then suspends the device (vfio-uapi.md §6.4).
void VfioPciCoreDevice::pmRuntimePut() {
  if (!suspendDue()) return;
  downWriteMemoryLock();
  if (suspendDue()) runtimeSuspendLocked();
  upWriteMemoryLock();
}

// The device's usage count is 0: nobody holds it open (or
// disable_idle_d3 keeps the probe's count), or LOW_POWER_ENTRY gave the
// open's back.
bool VfioPciCoreDevice::suspendDue() const {
  const bool held = options_.disableIdleD3 || opened_.load(std::memory_order_acquire);
  const bool idle = !held || usageDropped_.load(std::memory_order_acquire);
  return idle && runtimePmAllowed_.load(std::memory_order_acquire) && !runtimeSuspended();
}

void VfioPciCoreDevice::setRuntimePmAllowed(bool allowed) {
  runtimePmAllowed_.store(allowed, std::memory_order_release);
  if (allowed || !runtimeSuspended()) return;
  downWriteMemoryLock();  // pm_runtime_forbid() resumes the device
  if (runtimeSuspended()) runtimeResumeLocked();
  upWriteMemoryLock();
}

// The driver's callback first brings a user's D3hot back to D0 (restoring a
// NoSoftRst- function); the PCI core then saves the state and picks the
// target: D3hot, or D0 for a function without a PM capability.
void VfioPciCoreDevice::runtimeSuspendLocked() {
  (void)setPowerStateLocked(PciPowerState::kD0);
  runtimeSave_ = pdev_.saveState();
  if (pdev_.pmCapOffset()) (void)pdev_.setPowerState(PciPowerState::kD3hot);
  runtimeSuspended_.store(true, std::memory_order_release);
}

// The PCI core powers the function up and restores its state; the driver
// then signals the wakeup eventfd and leaves low power, so mappings fault
// in again without LOW_POWER_EXIT. Without an eventfd low power stays on.
void VfioPciCoreDevice::runtimeResumeLocked() {
  (void)pdev_.setPowerState(PciPowerState::kD0);
  if (runtimeSave_) pdev_.restoreState(*runtimeSave_);
  runtimeSave_.reset();
  runtimeSuspended_.store(false, std::memory_order_release);
  if (pmWakeEventfd_ == nullptr) return;
  pmWakeEventfd_->signal();
  exitLowPowerLocked();
}

// __vfio_pci_runtime_pm_exit(): engaged cleared, the usage count taken back
// (pm_runtime_get_noresume), the eventfd dropped.
void VfioPciCoreDevice::exitLowPowerLocked() {
  pmRuntimeEngaged_ = false;
  usageDropped_.store(false, std::memory_order_release);
  pmWakeEventfd_.reset();
}

Status VfioPciCoreDevice::setPowerStateLocked(PciPowerState state) {
  const PciPowerState current = pdev_.powerState();
  const bool needsSave =
      needsPmRestore_ && current < PciPowerState::kD3hot && state >= PciPowerState::kD3hot;
  const bool needsRestore =
      needsPmRestore_ && current >= PciPowerState::kD3hot && state == PciPowerState::kD0;
  std::optional<PciSavedState> saved;
  if (needsSave) saved = pdev_.saveState();
  const Status st = pdev_.setPowerState(state);
  if (!st) return st;
  if (needsSave && pdev_.powerState() >= PciPowerState::kD3hot) {
    pmSave_ = saved;
  } else if (needsRestore && pmSave_) {
    pdev_.restoreState(*pmSave_);
    pmSave_.reset();
  }
  return st;
}

}  // namespace vfiomm
