// Runs the C-style setup program (vfio_setup_program.cc) against one device
// of a kernel, as a new process, and expects it to check every answer and
// leave the device closed again.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "kernel/kernel.h"
#include "uapi/libc.h"
#include "uapi/process.h"
#include "vfio/vfio_device.h"
#include "vfio_setup_program.h"

namespace vfiomm::testing {

inline void expectSetupProgramPasses(Kernel& kernel, VfioDevice& dev, bool cdev) {
  auto proc = Process::spawn(kernel, "selftest");
  const std::string group = kernel.groupPath(dev);
  const std::string cdevPath = kernel.cdevPath(dev);
  const libc::vfio_setup_options opts{dev.name().c_str(), group.c_str(), cdevPath.c_str(),
                                      cdev ? 1 : 0};
  char err[256] = "";
  {
    libc::Session session(*proc);
    EXPECT_EQ(libc::vfio_setup_program(&opts, err, sizeof(err)), 0) << err;
  }
  // Everything it opened and mapped is gone again.
  EXPECT_EQ(dev.openCount(), 0);
}

}  // namespace vfiomm::testing
