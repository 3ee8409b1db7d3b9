// Where the repository's files are (scenarios/, docs/, golden files), for
// tests that read them. A compile definition rather than __FILE__, which a
// compiler cache or -ffile-prefix-map may make relative.
#pragma once

#include <string>

namespace vfiomm::test {

inline std::string sourceDir() { return VFIOMM_SOURCE_DIR; }

}  // namespace vfiomm::test
