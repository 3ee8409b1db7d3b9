// SourceLocation: std::source_location's interface on the compiler builtins.
// clang 14 with libstdc++ 12 has no std::source_location (it lacks
// __builtin_source_location); __builtin_FILE/LINE/FUNCTION exist in both
// compilers we build with.
#pragma once

#include <algorithm>
#include <cstdint>

namespace vfiomm {

class SourceLocation {
 public:
  static SourceLocation current(const char* file = __builtin_FILE(),
                                unsigned line = __builtin_LINE(),
                                const char* function = __builtin_FUNCTION()) noexcept {
    return SourceLocation(file, line, function);
  }
  constexpr SourceLocation() noexcept = default;

  // std::source_location's names, which this stands in for.
  // NOLINTNEXTLINE(readability-identifier-naming)
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr unsigned line() const noexcept {
    return static_cast<unsigned>(functionAndLine_ >> kLineShift);
  }
  // NOLINTNEXTLINE(readability-identifier-naming)
  const char* function_name() const noexcept {
    const uint64_t function = functionAndLine_ & kAddressMask;
    return function == 0 ? "" : reinterpret_cast<const char*>(function);
  }

 private:
  // Two words, so that a location travels in two registers (x86-64 SysV
  // passes a trivially copyable 16-byte struct so): every lock call takes
  // one, and a 24-byte one went through memory, where each copy of it
  // reloaded the stores that had just built it as wider words, which the
  // CPU cannot forward (a stall per lock call). The line rides in the top
  // 16 bits of the function name's address, which a user-space address
  // (below 2^47, or 2^48 on arm64) leaves clear; a name elsewhere reads as
  // "", and a line past 65535 as 65535.
  static constexpr unsigned kLineShift = 48;
  static constexpr uint64_t kAddressMask = (uint64_t{1} << kLineShift) - 1;

  SourceLocation(const char* file, unsigned line, const char* function) noexcept
      : file_(file), functionAndLine_(pack(reinterpret_cast<uintptr_t>(function), line)) {}
  static uint64_t pack(uint64_t function, unsigned line) noexcept {
    const uint64_t address = (function & ~kAddressMask) == 0 ? function : 0;
    return address | (uint64_t{std::min(line, 0xffffU)} << kLineShift);
  }

  const char* file_ = "";
  uint64_t functionAndLine_ = 0;
};
static_assert(sizeof(SourceLocation) == 16);

}  // namespace vfiomm
