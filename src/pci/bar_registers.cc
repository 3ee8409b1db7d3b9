#include "pci/bar_registers.h"

#include <fmt/format.h>

#include <utility>

#include "base/assert.h"

namespace vfiomm {

namespace {

uint64_t widthMask(unsigned size) {
  return size >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * size)) - 1;
}

uint8_t byteOf(uint64_t v, uint64_t i) { return static_cast<uint8_t>(v >> (8 * i)); }

}  // namespace

std::string checkBarRegisters(uint64_t len, const std::vector<BarRegisterSpec>& specs) {
  std::map<uint64_t, const BarRegisterSpec*> byOffset;
  for (const BarRegisterSpec& s : specs) {
    if (s.size != 1 && s.size != 2 && s.size != 4 && s.size != 8)
      return fmt::format("register '{}': size {} (1, 2, 4 or 8)", s.name, s.size);
    if (s.offset % s.size != 0)
      return fmt::format("register '{}': offset {:#x} is not aligned to its size", s.name,
                         s.offset);
    if (s.offset >= len || len - s.offset < s.size)
      return fmt::format("register '{}' at {:#x} is outside the {}-byte BAR", s.name, s.offset,
                         len);
    if ((s.reset & ~widthMask(s.size)) != 0 || (s.writable & ~widthMask(s.size)) != 0)
      return fmt::format("register '{}': reset or writable wider than {} bytes", s.name, s.size);
    if (!byOffset.emplace(s.offset, &s).second)
      return fmt::format("register '{}' at {:#x} overlaps another", s.name, s.offset);
  }
  uint64_t end = 0;
  for (const auto& [offset, s] : byOffset) {
    if (offset < end)
      return fmt::format("register '{}' at {:#x} overlaps another", s->name, offset);
    end = offset + s->size;
  }
  return {};
}

BarRegisters::BarRegisters(uint64_t len, std::vector<BarRegisterSpec> specs, uint8_t unimplemented)
    : unimplemented_(unimplemented) {
  VFIOMM_ASSERT_MSG(checkBarRegisters(len, specs).empty(),
                    "a BAR's register description is invalid");
  for (BarRegisterSpec& s : specs) {
    const uint64_t offset = s.offset;
    const uint64_t reset = s.reset;
    registers_.emplace(offset, Register{std::move(s), reset});
  }
}

const BarRegisters::Register* BarRegisters::find(uint64_t offset) const {
  auto it = registers_.upper_bound(offset);
  if (it == registers_.begin()) return nullptr;
  --it;
  return offset - it->first < it->second.spec.size ? &it->second : nullptr;
}

BarRegisters::Register* BarRegisters::find(uint64_t offset) {
  return const_cast<Register*>(std::as_const(*this).find(offset));
}

void BarRegisters::catchUpResets(uint64_t resets) {
  if (resets == resetsSeen_) return;
  resetsSeen_ = resets;
  for (auto& [offset, r] : registers_) r.value = r.spec.reset;
}

uint64_t BarRegisters::read(uint64_t offset, unsigned size, uint64_t resets) {
  std::lock_guard guard(mu_);
  catchUpResets(resets);
  uint64_t value = 0;
  for (uint64_t i = 0; i < size; ++i) {
    const Register* r = find(offset + i);
    const uint8_t b = r ? byteOf(r->value, offset + i - r->spec.offset) : unimplemented_;
    value |= uint64_t{b} << (8 * i);
  }
  return value;
}

void BarRegisters::write(uint64_t offset, unsigned size, uint64_t value, uint64_t resets) {
  std::lock_guard guard(mu_);
  catchUpResets(resets);
  for (uint64_t i = 0; i < size; ++i) {
    Register* r = find(offset + i);
    if (r == nullptr) continue;  // a hole: the write is dropped
    const uint64_t shift = 8 * (offset + i - r->spec.offset);
    const uint64_t mask = (uint64_t{0xff} << shift) & r->spec.writable;
    const uint64_t incoming = uint64_t{byteOf(value, i)} << shift;
    r->value = (r->value & ~mask) | (incoming & mask);
  }
}

}  // namespace vfiomm
