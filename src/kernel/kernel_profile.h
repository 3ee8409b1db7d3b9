// Kernel profiles (mm-pfnmap.md §14): a named kernel version and the
// values of its version switches, in three halves read by the layers they
// belong to. A profile's switches can be overridden one by one
// (KernelConfig::profileOverride).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iommufd/iommufd_profile.h"
#include "mm/mm_profile.h"
#include "vfio/vfio_profile.h"

namespace vfiomm {

struct KernelProfile {
  std::string name;
  MmProfile mm;
  IommufdProfile iommufd;
  VfioProfile vfio;

  // linux-6.1, linux-6.9, linux-6.10, linux-6.12.0, linux-6.12, linux-6.15, linux-6.19.
  static std::optional<KernelProfile> byName(std::string_view name);
  static std::vector<std::string> names();
};

}  // namespace vfiomm
