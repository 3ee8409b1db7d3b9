#include "pci/pci_vpd.h"

#include "base/assert.h"

namespace vfiomm {

namespace {

constexpr uint8_t kLargeResource = 0x80;  // PCI_VPD_LRDT
constexpr uint8_t kEndTag = 0x0f;         // PCI_VPD_STIN_END, a small resource
constexpr uint8_t kErased = 0xff;

}  // namespace

PciVpd::PciVpd(std::vector<uint8_t> eeprom) : eeprom_(std::move(eeprom)), size_(tagWalk(eeprom_)) {
  VFIOMM_ASSERT_MSG(eeprom_.size() <= kMaxSize, "a VPD EEPROM holds at most 32 KiB");
}

// The kernel's walk: large resources carry a 16-bit length, small ones a
// 3-bit one; the end tag closes the list. A first byte of 0x00 or 0xff
// means nothing is there; running out of bytes ends the list where it is.
uint32_t PciVpd::tagWalk(const std::vector<uint8_t>& eeprom) {
  auto at = [&](uint32_t pos) { return pos < eeprom.size() ? eeprom[pos] : kErased; };
  uint32_t off = 0;
  while (off < kMaxSize) {
    const uint8_t tag = at(off);
    if (off == 0 && (tag == 0x00 || tag == kErased)) return 0;
    uint32_t next = 0;
    if (tag & kLargeResource) {
      if (off + 3 > kMaxSize) return off;
      next = off + 3 + (at(off + 1) | uint32_t{at(off + 2)} << 8);
    } else {
      next = off + 1 + (tag & 0x07);
      if (((tag >> 3) & 0x0f) == kEndTag) return next <= kMaxSize ? next : off;
    }
    if (next > kMaxSize) return off;
    off = next;
  }
  return off;
}

uint8_t PciVpd::byteAt(uint32_t pos) const { return pos < eeprom_.size() ? eeprom_[pos] : kErased; }

Result<uint32_t> PciVpd::readDword(uint32_t pos) {
  if (size_ == 0) return fail(Errno::kENODEV);
  if (pos >= size_ || size_ - pos < 4) return fail(Errno::kEIO);
  MutexGuard g(lock_);
  uint32_t value = 0;
  for (unsigned i = 0; i < 4; ++i) value |= uint32_t{byteAt(pos + i)} << (8 * i);
  return value;
}

Status PciVpd::writeDword(uint32_t pos, uint32_t value) {
  if (pos % 4 != 0) return fail(Errno::kEINVAL);
  if (size_ == 0) return fail(Errno::kENODEV);
  if (pos >= size_ || size_ - pos < 4) return fail(Errno::kEINVAL);
  MutexGuard g(lock_);
  if (eeprom_.size() < pos + 4) eeprom_.resize(pos + 4, kErased);
  for (unsigned i = 0; i < 4; ++i) eeprom_[pos + i] = static_cast<uint8_t>(value >> (8 * i));
  return ok();
}

}  // namespace vfiomm
