// The seeded bugs `vfiomm check --mutate NAME` turns on: each one a switch
// of DesignOptions, documented there with the kernel rule it breaks.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "vfio/mapping_design.h"

namespace vfiomm::check {

std::vector<std::string_view> mutationNames();
// Turns mutation `name` on in `options`; false when there is no such one.
bool applyMutation(std::string_view name, DesignOptions& options);

}  // namespace vfiomm::check
