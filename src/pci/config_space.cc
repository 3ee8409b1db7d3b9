#include "pci/config_space.h"

#include "base/assert.h"

namespace vfiomm {

namespace {

uint8_t byteOf(uint32_t value, unsigned i) { return static_cast<uint8_t>(value >> (8 * i)); }

}  // namespace

ConfigSpace::ConfigSpace(uint32_t size) : size_(size) {
  VFIOMM_ASSERT(size == kPciCfgSpaceSize || size == kPciCfgSpaceExpSize);
}

uint32_t ConfigSpace::read(uint32_t offset, unsigned size) const {
  VFIOMM_ASSERT(size <= 4 && offset + size <= size_);
  uint32_t value = 0;
  for (unsigned i = 0; i < size; ++i) value |= uint32_t{bytes_[offset + i]} << (8 * i);
  return value;
}

void ConfigSpace::write(uint32_t offset, unsigned size, uint32_t value) {
  VFIOMM_ASSERT(size <= 4 && offset + size <= size_);
  for (unsigned i = 0; i < size; ++i) {
    const uint8_t mask = wmask_[offset + i];
    const uint8_t v = byteOf(value, i);
    uint8_t& b = bytes_[offset + i];
    b = static_cast<uint8_t>(((b & ~mask) | (v & mask)) & ~(v & w1cmask_[offset + i]));
  }
}

void ConfigSpace::set(uint32_t offset, unsigned size, uint32_t value) {
  VFIOMM_ASSERT(size <= 4 && offset + size <= size_);
  for (unsigned i = 0; i < size; ++i) bytes_[offset + i] = byteOf(value, i);
}

void ConfigSpace::setWritable(uint32_t offset, unsigned size, uint32_t mask) {
  VFIOMM_ASSERT(size <= 4 && offset + size <= size_);
  for (unsigned i = 0; i < size; ++i) wmask_[offset + i] = byteOf(mask, i);
}

void ConfigSpace::setWriteOneToClear(uint32_t offset, unsigned size, uint32_t mask) {
  VFIOMM_ASSERT(size <= 4 && offset + size <= size_);
  for (unsigned i = 0; i < size; ++i) w1cmask_[offset + i] = byteOf(mask, i);
}

}  // namespace vfiomm
