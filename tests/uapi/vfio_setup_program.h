// A program in the C style of the kernel's vfio selftest library
// (tools/testing/selftests/vfio/lib/vfio_pci_device.c): it sets a device up
// the way that library and QEMU do, through vfiomm::libc only, and checks
// every answer it gets.
#pragma once

#include <cstddef>

namespace vfiomm::libc {

// C names, as the program would have them.
// NOLINTBEGIN(readability-identifier-naming)
struct vfio_setup_options {
  const char* bdf;         // "0000:01:00.0"
  const char* group_path;  // "/dev/vfio/N": the group path (with a container)
  const char* cdev_path;   // "/dev/vfio/devices/vfioN": the cdev path (with an iommufd)
  int use_cdev;
};

// 0, or -1 with `err` saying which call answered what it must not.
int vfio_setup_program(const struct vfio_setup_options* opts, char* err, size_t errlen);

// NOLINTEND(readability-identifier-naming)

}  // namespace vfiomm::libc
