// ConfigSpace: the bytes of one PCI function's configuration space and, bit
// by bit, which of them software can change. A register bit is hardwired
// (read-only), read-write, write-one-to-clear, or a command whose write
// makes the device act (start an FLR, change power state); the first three
// kinds live here, the actions are the device's (PciDevice).
#pragma once

#include <array>
#include <cstdint>

#include "pci/pci_regs.h"

namespace vfiomm {

class ConfigSpace {
 public:
  // `size`: kPciCfgSpaceSize or kPciCfgSpaceExpSize. Everything reads 0 and
  // nothing is writable until the device says otherwise.
  explicit ConfigSpace(uint32_t size);

  uint32_t size() const { return size_; }

  // Little endian, like the bus. `size` is 1, 2 or 4 and the access lies
  // inside the space (the device checks what software asks for).
  uint32_t read(uint32_t offset, unsigned size) const;
  // A software write: only the writable bits change.
  void write(uint32_t offset, unsigned size, uint32_t value);

  // The device's own side: a hardwired value, or a state change the
  // hardware makes itself (a status bit, a power state).
  void set(uint32_t offset, unsigned size, uint32_t value);
  void setWritable(uint32_t offset, unsigned size, uint32_t mask);
  // Status bits a device latches and software clears by writing 1 (RW1C).
  void setWriteOneToClear(uint32_t offset, unsigned size, uint32_t mask);

 private:
  uint32_t size_;
  std::array<uint8_t, kPciCfgSpaceExpSize> bytes_{};
  std::array<uint8_t, kPciCfgSpaceExpSize> wmask_{};
  std::array<uint8_t, kPciCfgSpaceExpSize> w1cmask_{};
};

}  // namespace vfiomm
