// One table of names per enum, which the parsers and the writers both read,
// so that what vfiomm prints is what it accepts back:
//
//   inline constexpr EnumName<DmaPath> kDmaPathNames[] = {{DmaPath::kVaddr, "vaddr"}, ...};
//   nameOf(kDmaPathNames, p);         // "vaddr"
//   valueOf(kDmaPathNames, "vaddr");  // DmaPath::kVaddr, or nullopt
//   nameList(kDmaPathNames);          // "vaddr, dma-buf", for error messages
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace vfiomm {

template <class E>
struct EnumName {
  E value;
  const char* name;
};

// "?" for a value the table lacks (a table that misses a value is a bug its
// tests catch).
template <class E, size_t N>
constexpr const char* nameOf(const EnumName<E> (&table)[N], E value) {
  for (const EnumName<E>& e : table)
    if (e.value == value) return e.name;
  return "?";
}

template <class E, size_t N>
constexpr std::optional<E> valueOf(const EnumName<E> (&table)[N], std::string_view name) {
  for (const EnumName<E>& e : table)
    if (name == e.name) return e.value;
  return std::nullopt;
}

// The names, in table order, joined by `separator`.
template <class E, size_t N>
std::string nameList(const EnumName<E> (&table)[N], std::string_view separator = ", ") {
  std::string out;
  for (const EnumName<E>& e : table) {
    if (!out.empty()) out += separator;
    out += e.name;
  }
  return out;
}

}  // namespace vfiomm
