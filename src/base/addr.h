// Strong address types. A VirtAddr cannot be passed where a PhysAddr or a Pfn
// is expected; every conversion is spelled out (virt_to_pfn style helpers live
// with the code that owns the translation, not here).
#pragma once

#include <fmt/format.h>

#include <compare>
#include <cstdint>
#include <functional>

#include "base/page_geometry.h"

namespace vfiomm {

namespace detail {
// CRTP base for a 64-bit value with explicit construction and read-out.
template <typename Derived>
class StrongU64 {
 public:
  constexpr StrongU64() = default;
  constexpr explicit StrongU64(uint64_t v) : value_(v) {}
  constexpr uint64_t value() const { return value_; }
  friend constexpr auto operator<=>(const StrongU64&, const StrongU64&) = default;

 private:
  uint64_t value_ = 0;
};
}  // namespace detail

// A user virtual address (byte granular).
class VirtAddr : public detail::StrongU64<VirtAddr> {
 public:
  using StrongU64::StrongU64;
  friend constexpr auto operator<=>(const VirtAddr&, const VirtAddr&) = default;
  constexpr VirtAddr operator+(uint64_t d) const { return VirtAddr(value() + d); }
  constexpr VirtAddr operator-(uint64_t d) const { return VirtAddr(value() - d); }
  constexpr uint64_t operator-(VirtAddr o) const { return value() - o.value(); }
  constexpr VirtAddr alignDown(uint64_t size) const { return VirtAddr(value() & ~(size - 1)); }
  constexpr VirtAddr alignUp(uint64_t size) const {
    return VirtAddr((value() + size - 1) & ~(size - 1));
  }
  constexpr bool isAligned(uint64_t size) const { return (value() & (size - 1)) == 0; }
  // Index of this address in the table of `level` (pgd_index, pud_index, ...).
  constexpr unsigned tableIndex(PtLevel level) const {
    return static_cast<unsigned>((value() >> levelShift(level)) & (kPtrsPerTable - 1));
  }
};

// A physical address (byte granular).
class PhysAddr : public detail::StrongU64<PhysAddr> {
 public:
  using StrongU64::StrongU64;
  friend constexpr auto operator<=>(const PhysAddr&, const PhysAddr&) = default;
  constexpr PhysAddr operator+(uint64_t d) const { return PhysAddr(value() + d); }
  constexpr uint64_t operator-(PhysAddr o) const { return value() - o.value(); }
};

// A physical page frame number.
class Pfn : public detail::StrongU64<Pfn> {
 public:
  using StrongU64::StrongU64;
  friend constexpr auto operator<=>(const Pfn&, const Pfn&) = default;
  static constexpr Pfn fromPhys(PhysAddr pa) { return Pfn(pa.value() >> kPageShift); }
  constexpr PhysAddr toPhys() const { return PhysAddr(value() << kPageShift); }
  constexpr Pfn operator+(uint64_t d) const { return Pfn(value() + d); }
  constexpr uint64_t operator-(Pfn o) const { return value() - o.value(); }
  constexpr bool isAligned(unsigned order) const {
    return (value() & ((uint64_t{1} << order) - 1)) == 0;
  }
};

// A file offset in pages (vm_pgoff, vmf->pgoff, i_mmap keys).
class PgOff : public detail::StrongU64<PgOff> {
 public:
  using StrongU64::StrongU64;
  friend constexpr auto operator<=>(const PgOff&, const PgOff&) = default;
  static constexpr PgOff fromBytes(uint64_t off) { return PgOff(off >> kPageShift); }
  constexpr uint64_t toBytes() const { return value() << kPageShift; }
  constexpr PgOff operator+(uint64_t d) const { return PgOff(value() + d); }
  constexpr uint64_t operator-(PgOff o) const { return value() - o.value(); }
};

}  // namespace vfiomm

template <typename T>
requires std::is_base_of_v<vfiomm::detail::StrongU64<T>, T>
struct fmt::formatter<T> : fmt::formatter<uint64_t> {
  auto format(const T& v, format_context& ctx) const {
    return fmt::formatter<uint64_t>::format(v.value(), ctx);
  }
};

template <typename T>
requires std::is_base_of_v<vfiomm::detail::StrongU64<T>, T>
struct std::hash<T> {
  size_t operator()(const T& v) const noexcept { return std::hash<uint64_t>{}(v.value()); }
};
