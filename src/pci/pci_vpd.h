// PciVpd: a function's Vital Product Data as the PCI core reaches it
// (drivers/pci/vpd.c): an EEPROM behind the VPD capability's address/data
// registers, of which the core reads and writes whole dwords and only up
// to the end of the tag list it finds there (pci_vpd_size). The bytes are
// the card's; a card whose EEPROM is blank has no usable VPD (-ENODEV).
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "sync/mutex.h"
#include "sync/thread_annotations.h"

namespace vfiomm {

// vpd->lock: one VPD transaction at a time.
inline const LockClass kPciVpdLockClass{"&vpd->lock"};

class PciVpd {
 public:
  // The most the 15-bit VPD address reaches (PCI_VPD_MAX_SIZE).
  static constexpr uint32_t kMaxSize = 0x8000;

  // `eeprom`: at most kMaxSize bytes; what lies beyond reads as 0xff, as an
  // erased EEPROM does.
  explicit PciVpd(std::vector<uint8_t> eeprom);

  // pci_read_vpd(pos, 4): -ENODEV when the tag walk found no VPD; -EIO
  // (a short read, which callers treat as failure) for a dword not wholly
  // inside it.
  Result<uint32_t> readDword(uint32_t pos) EXCLUDES(lock_);
  // pci_write_vpd(pos, 4): -EINVAL unaligned or past the end, -ENODEV
  // without VPD.
  Status writeDword(uint32_t pos, uint32_t value) EXCLUDES(lock_);

  // pci_vpd_size(): the bytes up to and including the end tag, 0 when the
  // first tag is invalid (a blank EEPROM).
  uint32_t size() const { return size_; }

 private:
  uint8_t byteAt(uint32_t pos) const REQUIRES(lock_);
  static uint32_t tagWalk(const std::vector<uint8_t>& eeprom);

  Mutex lock_{kPciVpdLockClass};
  std::vector<uint8_t> eeprom_ GUARDED_BY(lock_);
  const uint32_t size_;
};

}  // namespace vfiomm
