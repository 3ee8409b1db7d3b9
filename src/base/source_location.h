// SourceLocation: std::source_location's interface on the compiler builtins.
// clang 14 with libstdc++ 12 has no std::source_location (it lacks
// __builtin_source_location); __builtin_FILE/LINE/FUNCTION exist in both
// compilers we build with.
#pragma once

namespace vfiomm {

class SourceLocation {
 public:
  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          unsigned line = __builtin_LINE(),
                                          const char* function = __builtin_FUNCTION()) noexcept {
    return SourceLocation(file, line, function);
  }
  constexpr SourceLocation() noexcept = default;

  // std::source_location's names, which this stands in for.
  // NOLINTNEXTLINE(readability-identifier-naming)
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr unsigned line() const noexcept { return line_; }
  // NOLINTNEXTLINE(readability-identifier-naming)
  constexpr const char* function_name() const noexcept { return function_; }

 private:
  constexpr SourceLocation(const char* file, unsigned line, const char* function) noexcept
      : file_(file), line_(line), function_(function) {}

  const char* file_ = "";
  unsigned line_ = 0;
  const char* function_ = "";
};

}  // namespace vfiomm
