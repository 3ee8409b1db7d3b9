// BarRegisters: the device registers behind a BAR whose backing is
// `registers` (BarBacking::kRegisters), as opposed to memory that reads
// back what was written. A small description (BarRegisterSpec) says which
// offsets are registers, their reset values and which bits a write latches;
// everything else is unimplemented:
//   - a read of an unimplemented byte returns the BAR's `unimplemented`
//     byte (0x00 unless the description says otherwise: what most devices
//     return for a hole in their register file);
//   - a write to an unimplemented byte, or to bits a register does not
//     latch, is dropped;
//   - an FLR, a PM reset or a bus reset puts every register back to its
//     reset value.
// Side effects of registers (doorbells, DMA engines) are not modelled: a
// register only stores.
//
// Accesses are byte-granular, so an access may span registers or holes.
// The bank has its own plain mutex: it is the device's storage, not a
// kernel lock, and an access must not block on a model lock.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace vfiomm {

struct BarRegisterSpec {
  std::string name;
  uint64_t offset = 0;
  unsigned size = 4;      // 1, 2, 4 or 8 bytes, naturally aligned
  uint64_t reset = 0;     // the value after power-on and every reset
  uint64_t writable = 0;  // bits a write latches; the others keep their value
};

class BarRegisters {
 public:
  // `len`: the BAR's size; every register lies inside it and none overlap
  // (asserts: the description is validated where it is parsed).
  BarRegisters(uint64_t len, std::vector<BarRegisterSpec> specs, uint8_t unimplemented);

  // `resets`: how many resets the device has been through. A bank that
  // has seen fewer goes back to its reset values first: the reset reaches
  // the registers at the next access, which no access can tell apart from
  // at the reset itself (decode is off while a reset runs).
  uint64_t read(uint64_t offset, unsigned size, uint64_t resets);
  void write(uint64_t offset, unsigned size, uint64_t value, uint64_t resets);

 private:
  struct Register {
    BarRegisterSpec spec;
    uint64_t value = 0;
  };
  // The register holding byte `offset`, or nullptr.
  const Register* find(uint64_t offset) const;
  Register* find(uint64_t offset);
  void catchUpResets(uint64_t resets);

  const uint8_t unimplemented_;
  std::mutex mu_;
  std::map<uint64_t, Register> registers_;  // by offset
  uint64_t resetsSeen_ = 0;
};

// Checks a description against a BAR of `len` bytes: the reason it is
// wrong, or empty.
std::string checkBarRegisters(uint64_t len, const std::vector<BarRegisterSpec>& specs);

}  // namespace vfiomm
