#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace vfiomm {

void assertFailed(const char* expr, const char* msg, SourceLocation loc) {
  std::fprintf(stderr, "vfiomm: BUG at %s:%u in %s: %s%s%s\n", loc.file_name(),
               static_cast<unsigned>(loc.line()), loc.function_name(), expr,
               msg != nullptr ? ": " : "", msg != nullptr ? msg : "");
  std::abort();
}

}  // namespace vfiomm
