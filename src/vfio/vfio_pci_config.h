// VfioPciConfig models drivers/vfio/pci/vfio_pci_config.c: the config
// region as vfio shows it to its user (vfio-uapi.md §8). At every first
// open it walks the device's capability chain as the device has it and
// builds, byte by byte, which capability owns the byte and which of its
// bits are virtual (served from vconfig, vfio's copy) and which writable.
// An access is cut into naturally aligned 1/2/4-byte pieces that stay
// inside one capability; each piece reads the device with the virtual bits
// replaced from vconfig, and writes writable virtual bits to vconfig,
// writable physical bits to the device, and drops the rest. Bytes no known
// capability owns go to the device untouched. The registers whose writes
// make vfio act (COMMAND, PMCSR, MSI flags, DEVCTL, VPD address, AF
// control) have their handlers here.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include "base/result.h"

namespace vfiomm {

class VfioPciCoreDevice;

class VfioPciConfig {
 public:
  explicit VfioPciConfig(VfioPciCoreDevice& vdev);
  VfioPciConfig(const VfioPciConfig&) = delete;
  VfioPciConfig& operator=(const VfioPciConfig&) = delete;

  // vfio_config_init(): the map, the permissions and vconfig from the
  // device as it is now (after pci_enable_device), the BAR values to
  // restore after a reset (rbar), and the virtual COMMAND the memory-enable
  // test uses.
  void init();
  // vfio_pci_config_rw(): `pos` is the offset inside the region. The whole
  // call is -EFAULT when it runs past cfg_size (UAPI-28).
  Result<uint64_t> rw(uint8_t* buf, uint64_t count, uint64_t pos, bool write);

 private:
  // How the bytes of one area are accessed (the kernel's perm_bits
  // read/write functions).
  enum class Kind : uint8_t {
    kUnassigned,  // no capability: raw pass-through
    kBasic,       // the type 0 header, 0x00-0x3f
    kPm,
    kMsi,
    kExp,
    kVpd,
    kAf,
    kDirect,  // reads pass through (header virtual), writes as the permissions say
    kVendor,  // vendor-specific: reads as kDirect, writes raw
  };
  struct Area {
    uint32_t start = 0;
    uint32_t len = 0;
    Kind kind = Kind::kUnassigned;
  };

  // --- building the map (vfio_cap_init, vfio_ecap_init) ---
  void addArea(uint32_t start, uint32_t len, Kind kind);
  void setPerm(uint32_t offset, unsigned size, uint32_t virt, uint32_t write);
  void initBasicPerms();
  void initCaps();
  void initExtCaps();
  void initCapPerms(const Area& area, uint8_t id);
  void initExtCapPerms(uint16_t id, uint32_t epos);
  uint32_t capLength(uint8_t id, uint32_t pos);
  uint32_t extCapLength(uint16_t id, uint32_t pos);

  // --- one piece ---
  unsigned pieceSize(uint32_t pos, uint64_t count) const;
  Result<uint32_t> readPiece(uint32_t pos, unsigned size);
  Status writePiece(uint32_t pos, unsigned size, uint32_t value);
  // vfio_default_config_read/_write.
  Result<uint32_t> defaultRead(uint32_t pos, unsigned size);
  Status defaultWrite(uint32_t pos, unsigned size, uint32_t value);
  // The registers with side effects.
  Status basicWrite(uint32_t pos, unsigned size, uint32_t value);
  Status commandWrite(uint32_t pos, unsigned size, uint32_t value);
  Status pmWrite(const Area& area, uint32_t pos, unsigned size, uint32_t value);
  Status msiWrite(const Area& area, uint32_t pos, unsigned size, uint32_t value);
  Status expWrite(const Area& area, uint32_t pos, unsigned size, uint32_t value);
  Status vpdWrite(const Area& area, uint32_t pos, unsigned size, uint32_t value);
  Status afWrite(const Area& area, uint32_t pos, unsigned size, uint32_t value);
  // pci_try_reset_function() under a zapped, write-held memory_lock, as a
  // virtual FLR bit asks (DEVCTL, AF).
  void virtualFlr();
  // vfio_bar_fixup(): vconfig's BARs as sizing shows them.
  void barFixupLocked();
  // vfio_need_bar_restore() / vfio_bar_restore().
  bool needBarRestore();
  void barRestore();

  uint32_t vconfigRead(uint32_t pos, unsigned size);
  void vconfigWrite(uint32_t pos, unsigned size, uint32_t value);
  uint32_t permRead(const std::vector<uint8_t>& perm, uint32_t pos, unsigned size) const;
  const Area& areaAt(uint32_t pos) const { return areas_[areaOf_[pos]]; }

  VfioPciCoreDevice& vdev_;
  // Written by init() at the first open only (no access runs then), read
  // by every access after it.
  uint32_t cfgSize_ = 0;
  std::vector<Area> areas_;         // areas_[0]: the unassigned bytes
  std::vector<uint16_t> areaOf_;    // pci_config_map, one entry per byte
  std::vector<uint8_t> virt_;       // per byte: the virtual bits
  std::vector<uint8_t> write_;      // per byte: the writable bits
  std::array<uint32_t, 7> rbar_{};  // BAR0-5 and the ROM BAR as at open
  bool extendedCaps_ = false;
  // vconfig itself. The kernel does not serialise config accesses beyond
  // memory_lock for COMMAND and PMCSR; this mutex only keeps the model's
  // bytes consistent, and is a leaf: nothing else is taken under it.
  std::mutex vconfigMu_;
  std::vector<uint8_t> vconfig_;
  bool barDirty_ = true;  // under vconfigMu_
};

}  // namespace vfiomm
